"""The README's benchmark on the shipped dataset: baselines give the scores they must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.paths import DATASETS_DIR

TEST_ITEMS = [json.loads(line) for line in
              (DATASETS_DIR / "morality_vqa" / "test.jsonl").read_text().splitlines() if line.strip()]


#: Items enough to check a baseline's mechanics; v2's test split has 344, and each scenario's
#: 8 consecutive items are half yes and hold whole polarity pairs, so the first 40 are too.
SOME = 40


def _share(answer: str, items: list[dict]) -> float:
    return sum(i["expected"] == answer for i in items) / len(items)


@pytest.mark.parametrize(("model", "expected", "yes_bias", "limit"), [
    ("oracle", 1.0, 0.0, SOME),
    # The README's claim is about the whole split: always-yes scores the share of yes items.
    ("always-yes", _share("yes", TEST_ITEMS), _share("no", TEST_ITEMS), None),
    ("always-no", _share("no", TEST_ITEMS[:SOME]), -_share("yes", TEST_ITEMS[:SOME]), SOME),
])
def test_readme_benchmark(model: str, expected: float, yes_bias: float, limit: int | None,
                          tmp_path: Path) -> None:
    out = tmp_path / "output"
    extra = ["--limit", str(limit)] if limit else []
    assert main(["--model", model, "--tasks", "morality", "--judges", "reference",
                 "--output-dir", str(out), "--no-progress", *extra]) == 0
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rows] == ["morality_0shot", "morality_1shot", "morality_2shot"]
    for row in rows:
        assert row["accuracy"] == pytest.approx(expected)
        assert row["strict_accuracy"] == pytest.approx(expected)
        assert row["yes_bias"] == pytest.approx(yes_bias)
        # Every item of a pair is in (whole scenarios), so the oracle keeps every pair.
        assert row["pair_consistency"] == (1.0 if model == "oracle" else 0.0)
        assert row["n"] == (limit or len(TEST_ITEMS)) and row["unclear_rate"] == 0.0
    if model == "always-yes":
        assert abs(expected - 0.5) <= 0.03


def test_mc_twins_score_without_a_judge(tmp_path: Path) -> None:
    assert main(["--model", "oracle", "--tasks", "morality_mc", "--output-dir", str(tmp_path),
                 "--no-progress", "--limit", str(SOME)]) == 0
    rows = [json.loads(x) for x in (tmp_path / "leaderboard.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} == {"loglikelihood"}
    assert all(r["accuracy"] == 1.0 and r["n"] == SOME for r in rows) and len(rows) == 3
