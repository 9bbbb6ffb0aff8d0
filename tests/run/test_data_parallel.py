"""Two processes under ``accelerate launch`` give the same run as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "tests" / "run_with_test_models.py"
TASKS = "morality_0shot,morality_fewshot,morality_1shot_mc"


def bench_args(include: Path, out: Path, model: str = "slow-echo", *extra: str) -> list[str]:
    return [str(LAUNCHER), "--model", model, "--tasks", TASKS, "--judges", "reference",
            "--repeats", "2", "--batch-size", "2", "--no-cache", "--include-path", str(include),
            "--output-dir", str(out), "--no-progress", *extra]


def launch_two(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # accelerate 1.x starts several CPU processes only through its torchrun-based launcher
    # (--multi_gpu); "--cpu --num_processes 2" without an MPI hostfile starts one process.
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", "0", *args],
        cwd=ROOT, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=300)


def samples_by_id(out: Path) -> dict[str, dict[str, Any]]:
    (run_dir,) = list((out / "runs").iterdir())
    lines = (run_dir / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len({s["request_id"] for s in samples}) == len(samples)
    return {s["request_id"]: s for s in samples}


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("run_name", "task", "judge", "accuracy", "ci_low", "ci_high",
                                  "n", "task_hash", "prompt_hash", "model_fingerprint"))


@pytest.mark.slow
def test_two_processes_match_one(mini_tasks: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch.distributed")
    pytest.importorskip("accelerate")
    one_log, two_log = tmp_path / "one.log", tmp_path / "two.log"
    env = {**os.environ, "VMB_TEST_GENERATED_LOG": str(one_log)}
    single = subprocess.run([sys.executable, *bench_args(mini_tasks, tmp_path / "one")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr

    double = launch_two(bench_args(mini_tasks, tmp_path / "two"),
                        {**os.environ, "VMB_TEST_GENERATED_LOG": str(two_log)})
    assert double.returncode == 0, double.stderr[-3000:]

    # Both processes generated, each a disjoint half, together everything once.
    by_rank: dict[str, list[str]] = {}
    for line in two_log.read_text().splitlines():
        rank, request_id = line.split()
        by_rank.setdefault(rank, []).append(request_id)
    assert set(by_rank) == {"0", "1"}
    assert abs(len(by_rank["0"]) - len(by_rank["1"])) <= 1
    assert not set(by_rank["0"]) & set(by_rank["1"])
    one_generated = [line.split()[1] for line in one_log.read_text().splitlines()]
    assert Counter(by_rank["0"] + by_rank["1"]) == Counter(one_generated)

    # One run folder with the same per-item outputs, and one set of leaderboard rows.
    one, two = samples_by_id(tmp_path / "one"), samples_by_id(tmp_path / "two")
    assert one.keys() == two.keys()
    for request_id, sample in one.items():
        other = two[request_id]
        for field in ("response", "loglikelihoods", "seed", "prompt_hash", "fewshot_ids",
                      "image_ids", "verdicts"):
            assert sample.get(field) == other.get(field), (request_id, field)
    rows_one = [json.loads(x) for x in (tmp_path / "one" / "leaderboard.jsonl").read_text().splitlines()]
    rows_two = [json.loads(x) for x in (tmp_path / "two" / "leaderboard.jsonl").read_text().splitlines()]
    assert len(rows_two) == len(rows_one) == 4  # the mc task adds its loglikelihood row
    assert sorted(map(row_key, rows_one)) == sorted(map(row_key, rows_two))


@pytest.mark.slow
def test_two_processes_match_one_on_magma_tiny(mini_tasks: Path, tmp_path: Path) -> None:
    pytest.importorskip("harness.models.magma.adapter")
    pytest.importorskip("accelerate")
    args = ("--limit", "3")
    single = subprocess.run(
        [sys.executable, *bench_args(mini_tasks, tmp_path / "one", "magma-tiny", *args)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    double = launch_two(bench_args(mini_tasks, tmp_path / "two", "magma-tiny", *args),
                        dict(os.environ))
    assert double.returncode == 0, double.stderr[-3000:]

    one, two = samples_by_id(tmp_path / "one"), samples_by_id(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 3 * 2 * 3
    for request_id, sample in one.items():
        other = two[request_id]
        for field in ("response", "seed", "prompt_hash", "fewshot_ids", "verdicts"):
            assert sample.get(field) == other.get(field), (request_id, field)
        if sample["loglikelihoods"] is not None:
            # Float32 kernels may round differently per process; never by more than this.
            assert other["loglikelihoods"] == pytest.approx(sample["loglikelihoods"], abs=1e-4)
    rows_one = (tmp_path / "one" / "leaderboard.jsonl").read_text().splitlines()
    rows_two = (tmp_path / "two" / "leaderboard.jsonl").read_text().splitlines()
    assert len(rows_two) == len(rows_one) == 4
    assert (sorted(row_key(json.loads(r)) for r in rows_one)
            == sorted(row_key(json.loads(r)) for r in rows_two))
