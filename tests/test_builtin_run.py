"""The README's benchmark on the shipped dataset: baselines give the scores they must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.paths import DATASETS_DIR

TEST_ITEMS = [json.loads(line) for line in
              (DATASETS_DIR / "morality_vqa" / "test.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(("model", "expected"), [
    ("oracle", 1.0),
    ("always-yes", sum(i["expected"] == "yes" for i in TEST_ITEMS) / len(TEST_ITEMS)),
    ("always-no", sum(i["expected"] == "no" for i in TEST_ITEMS) / len(TEST_ITEMS)),
])
def test_readme_benchmark(model: str, expected: float, tmp_path: Path) -> None:
    out = tmp_path / "output"
    assert main(["--model", model, "--tasks", "morality", "--judges", "reference",
                 "--output-dir", str(out), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rows] == ["morality_0shot", "morality_1shot", "morality_2shot"]
    for row in rows:
        assert row["accuracy"] == pytest.approx(expected)
        assert row["n"] == len(TEST_ITEMS) and row["unclear_rate"] == 0.0


def test_mc_twins_score_without_a_judge(tmp_path: Path) -> None:
    assert main(["--model", "oracle", "--tasks", "morality_mc", "--output-dir", str(tmp_path),
                 "--no-progress"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "leaderboard.jsonl").read_text().splitlines()]
    assert {r["judge"] for r in rows} == {"loglikelihood"}
    assert all(r["accuracy"] == 1.0 for r in rows) and len(rows) == 3
