"""The same command gives the same per-item outputs at --batch-size 1, 4 and 8."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import tests.slow_models  # noqa: F401  (registers slow-echo)
from harness.commands.cli import main
from harness.paths import MODEL_CARDS_DIR

TASKS = "morality_0shot,morality_fewshot,morality_1shot_mc"
EXACT_FIELDS = ("response", "seed", "prompt", "prompt_hash", "image_ids", "fewshot_ids",
                "verdicts", "error")
ROW_FIELDS = ("run_name", "task", "judge", "accuracy", "ci_low", "ci_high", "n", "n_scored",
              "refusal_rate", "unclear_rate", "task_hash", "prompt_hash", "model_fingerprint")
#: A real network pads a batch to its longest prompt, and CPU kernels sum in a different
#: order for other shapes: log-likelihoods may move in the last float32 bits, never more.
LOGLIKELIHOOD_TOLERANCE = 1e-4

MAGMA_TINY = pytest.param(
    "magma-tiny", 2, 3, marks=[pytest.mark.slow, pytest.mark.skipif(
        not (MODEL_CARDS_DIR / "magma-tiny.yaml").exists(),
        reason="the magma-tiny model card has not landed")])


def run_at(batch_size: int, model: str, repeats: int, limit: int | None, include: Path,
           out: Path) -> tuple[str, dict[str, dict[str, Any]], list[tuple[Any, ...]]]:
    extra = ["--limit", str(limit)] if limit else []
    assert main(["--model", model, "--tasks", TASKS, "--judges", "reference", "--repeats",
                 str(repeats), "--batch-size", str(batch_size), "--no-cache", "--no-progress",
                 "--include-path", str(include), "--output-dir", str(out), *extra]) == 0
    (run_dir,) = list((out / "runs").iterdir())
    samples = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        samples[sample["request_id"]] = sample
    rows = sorted(tuple(row.get(f) for f in ROW_FIELDS) for row in map(
        json.loads, (out / "leaderboard.jsonl").read_text().splitlines()))
    return run_dir.name, samples, rows


@pytest.mark.parametrize("model,repeats,limit", [("slow-echo", 3, None), ("random", 3, None),
                                                 MAGMA_TINY])
def test_batch_size_never_changes_outputs(model: str, repeats: int, limit: int | None,
                                          mini_tasks: Path, tmp_path: Path) -> None:
    results = {bs: run_at(bs, model, repeats, limit, mini_tasks, tmp_path / f"bs{bs}")
               for bs in (1, 4, 8)}
    name_1, samples_1, rows_1 = results[1]
    assert len(samples_1) == repeats * 3 * (limit or 6)
    # The repeats of a sampled item carry different seeds, or the test would be moot.
    assert len({s["seed"] for k, s in samples_1.items() if k.startswith("morality_0shot/")}) \
        == repeats * (limit or 6)
    for batch_size in (4, 8):
        name, samples, rows = results[batch_size]
        assert name == name_1  # batch size is not part of what a run is
        assert samples.keys() == samples_1.keys()
        for request_id, sample in samples.items():
            reference = samples_1[request_id]
            for field in EXACT_FIELDS:
                assert sample.get(field) == reference.get(field), (batch_size, request_id, field)
            scores, reference_scores = sample["loglikelihoods"], reference["loglikelihoods"]
            assert (scores is None) == (reference_scores is None)
            if scores is not None:
                assert len(scores) == len(reference_scores)
                assert all(math.isclose(a, b, rel_tol=0, abs_tol=LOGLIKELIHOOD_TOLERANCE)
                           for a, b in zip(scores, reference_scores)), (batch_size, request_id)
        assert rows == rows_1
