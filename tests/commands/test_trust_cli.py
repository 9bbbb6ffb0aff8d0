"""``run_bench.py leaderboard`` and ``compare`` on run folders the runner really wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.commands.cli import main

TASKS = "morality_0shot,morality_1shot,morality_0shot_train"


def bench(model: str, include: Path, out: Path, *extra: str) -> Path:
    assert main(["--model", model, "--tasks", TASKS, "--judges", "reference",
                 "--include-path", str(include), "--output-dir", str(out), "--no-progress",
                 *extra]) == 0
    results = sorted((out / "runs").glob(f"{model}-*/results.json"),
                     key=lambda p: p.stat().st_mtime)
    return results[-1].parent


def test_leaderboard_and_compare_on_real_runs(mini_tasks: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    oracle = bench("oracle", mini_tasks, out)
    yes = bench("always-yes", mini_tasks, out)
    capsys.readouterr()

    assert main(["leaderboard", "--output-dir", str(out), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {(r["model"], r["task"]) for r in rows} == {
        (m, t) for m in ("oracle", "always-yes") for t in TASKS.split(",")}
    by_key = {(r["model"], r["task"]): r for r in rows}
    assert float(by_key["oracle", "morality_1shot"]["accuracy"]) == 1.0
    assert by_key["oracle", "morality_1shot"]["shots"] == "1"
    assert by_key["oracle", "morality_0shot_train"]["split"] == "train"

    assert main(["leaderboard", "--output-dir", str(out), "--view", "paper",
                 "--format", "markdown", "--model", "oracle"]) == 0
    paper = capsys.readouterr().out
    assert "Table 1: oracle, commonsense-morality strict accuracy on train by shots" in paper
    # All right on few images: never a zero-width interval; too few images to trust.
    assert "| reference | 100% [44–100] img=3 unreliable n=6 | - | - |" in paper

    assert main(["compare", str(oracle), str(yes), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    pooled = next(c for c in result["comparisons"] if c["task"] == "(all tasks)")
    samples = [json.loads(x) for x in (yes / "samples.jsonl").read_text().splitlines()]
    always_yes_wrong = sum(1 for s in samples if s["verdicts"]["reference"].get("aligned") is False)
    assert pooled["only_a"] == always_yes_wrong and pooled["only_b"] == 0
    assert pooled["n_paired"] == len(samples)
    # The pooled row rests on each image once, however many tasks and shot counts ask it.
    images = {s["image_ids"][0] for s in samples}
    assert pooled["n_images"] == len(images) < pooled["n_paired"]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: no leaderboard at")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no run folder")


def test_repeat_statistics_reach_results_and_leaderboard(
        mini_tasks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tests.slow_models  # noqa: F401  (registers slow-echo, whose answers vary by seed)

    out = tmp_path / "out"
    assert main(["--model", "slow-echo", "--tasks", "morality_0shot", "--judges", "reference",
                 "--repeats", "3", "--include-path", str(mini_tasks), "--output-dir", str(out),
                 "--no-progress"]) == 0
    (run_dir,) = list((out / "runs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    stats = results["scores"]["morality_0shot"]["reference"]["repeat_stats"]

    votes: dict[str, list[bool]] = {}
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        verdict = sample["verdicts"]["reference"]
        if verdict["status"] == "ok":
            votes.setdefault(sample["doc_id"], []).append(bool(verdict["aligned"]))
    majority = [1.0 if 2 * sum(v) > len(v) else 0.0 if 2 * sum(v) < len(v) else 0.5
                for v in votes.values()]
    agreement = [max(sum(v), len(v) - sum(v)) / len(v) for v in votes.values()]
    assert stats["n_items"] == len(votes)
    assert stats["majority_accuracy"] == pytest.approx(sum(majority) / len(majority))
    assert stats["consistency"] == pytest.approx(sum(agreement) / len(agreement))
    assert stats["consistency"] < 1.0  # slow-echo's answers differ across repeats

    capsys.readouterr()
    assert main(["leaderboard", "--output-dir", str(out), "--format", "csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(row["majority_accuracy"]) == pytest.approx(stats["majority_accuracy"])
    assert float(row["consistency"]) == pytest.approx(stats["consistency"])
    assert row["repeats"] == "3"
