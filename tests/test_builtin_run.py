"""The README's benchmark on the shipped dataset: baselines give the scores they must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.paths import DATASETS_DIR

TEST_ITEMS = [json.loads(line) for line in
              (DATASETS_DIR / "morality_vqa" / "test.jsonl").read_text().splitlines() if line.strip()]


YES_SHARE = sum(i["expected"] == "yes" for i in TEST_ITEMS) / len(TEST_ITEMS)
HAS_PAIRS = any(i.get("pair_id") for i in TEST_ITEMS)


@pytest.mark.parametrize(("model", "expected", "yes_bias", "pair_consistency"), [
    ("oracle", 1.0, 0.0, 1.0 if HAS_PAIRS else None),
    ("always-yes", YES_SHARE, 1.0 - YES_SHARE, 0.0 if HAS_PAIRS else None),
    ("always-no", 1.0 - YES_SHARE, -YES_SHARE, 0.0 if HAS_PAIRS else None),
])
def test_readme_benchmark(model: str, expected: float, yes_bias: float,
                          pair_consistency: float | None, tmp_path: Path) -> None:
    out = tmp_path / "output"
    assert main(["--model", model, "--tasks", "morality", "--judges", "reference",
                 "--output-dir", str(out), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rows] == ["morality_0shot", "morality_1shot", "morality_2shot"]
    for row in rows:
        assert row["accuracy"] == pytest.approx(expected)
        assert row["strict_accuracy"] == pytest.approx(expected)
        assert row["yes_bias"] == pytest.approx(yes_bias)
        assert row["pair_consistency"] == pair_consistency
        assert row["n"] == len(TEST_ITEMS) and row["unclear_rate"] == 0.0


def test_mc_twins_score_without_a_judge(tmp_path: Path) -> None:
    assert main(["--model", "oracle", "--tasks", "morality_mc", "--output-dir", str(tmp_path),
                 "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "leaderboard.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} == {"loglikelihood"}
    assert all(r["accuracy"] == 1.0 for r in rows) and len(rows) == 3
