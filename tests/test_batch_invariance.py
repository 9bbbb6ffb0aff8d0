"""The same command gives the same per-item outputs at --batch-size 1, 4 and 8."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tests.slow_models  # noqa: F401  (registers slow-echo)
from harness.cli import main

TASKS = "morality_0shot,morality_fewshot,morality_1shot_mc"
ITEM_FIELDS = ("response", "loglikelihoods", "seed", "prompt", "prompt_hash", "image_ids",
               "fewshot_ids", "verdicts", "error")
ROW_FIELDS = ("run_name", "task", "judge", "accuracy", "ci_low", "ci_high", "n", "n_scored",
              "refusal_rate", "unclear_rate", "task_hash", "prompt_hash", "model_fingerprint")


def run_at(batch_size: int, model: str, include: Path, out: Path) -> tuple[str, dict, list]:
    assert main(["--model", model, "--tasks", TASKS, "--judges", "reference", "--repeats", "3",
                 "--batch-size", str(batch_size), "--no-cache", "--include-path", str(include),
                 "--output-dir", str(out)]) == 0
    (run_dir,) = list((out / "runs").iterdir())
    samples = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        samples[sample["request_id"]] = {f: sample.get(f) for f in ITEM_FIELDS}
    rows = sorted(tuple(row.get(f) for f in ROW_FIELDS) for row in map(
        json.loads, (out / "leaderboard.jsonl").read_text().splitlines()))
    return run_dir.name, samples, rows


@pytest.mark.parametrize("model", ["slow-echo", "random"])
def test_batch_size_never_changes_outputs(model: str, mini_tasks: Path, tmp_path: Path) -> None:
    results: dict[int, Any] = {bs: run_at(bs, model, mini_tasks, tmp_path / f"bs{bs}")
                               for bs in (1, 4, 8)}
    name_1, samples_1, rows_1 = results[1]
    assert len(samples_1) == 3 * (6 + 6 + 6)
    # The three repeats of a sampled item differ (the seed is per repeat), or the test is moot.
    assert len({samples_1[f"morality_0shot/mini-{i:03d}/{r}"]["seed"]
                for i in (6, 7) for r in range(3)}) == 6
    for batch_size in (4, 8):
        name, samples, rows = results[batch_size]
        assert name == name_1  # batch size is not part of what a run is
        assert samples == samples_1
        assert rows == rows_1
