"""A run's lm-eval-format files load with lm-eval 0.4's own helpers and print its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.evaluate import evaluate

lm_eval_utils = pytest.importorskip("lm_eval.utils")


def test_lm_eval_reads_a_baseline_run(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = evaluate("random", "morality_0shot,morality_0shot_mc", include_paths=[str(mini_tasks)],
                   output_dir=out, limit=5, seed=2)
    # Laid out as lm-eval lays them out: <output path>/<model name, sanitized>/...
    files = sorted(str(p) for p in (out / "random").iterdir())
    results_files = lm_eval_utils.get_results_filenames(files)
    assert len(results_files) == 1
    document = json.loads(Path(lm_eval_utils.get_latest_filename(results_files)).read_text())
    table = lm_eval_utils.make_table(document)

    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = cells[0] or task  # noqa: F821 - a task's later metrics leave its cell empty
        rows[(task, cells[4])] = cells
    scores = run.results["scores"]
    assert set(rows) == {("morality_0shot", "reference"), ("morality_0shot_mc", "acc"),
                         ("morality_0shot", "reference_strict"),
                         ("morality_0shot_mc", "acc_strict")}
    for (task, metric), cells in rows.items():
        if metric.endswith("_strict"):
            judge = "loglikelihood" if metric == "acc_strict" else "reference"
            assert float(cells[6]) == round(scores[task][judge]["strict_accuracy"], 4)
            continue
        summary = scores[task]["loglikelihood" if metric == "acc" else metric]
        assert cells[2] == "none" and cells[5] == "↑"
        # The table prints 4 decimals (its writer drops trailing zeros).
        assert float(cells[6]) == round(summary["accuracy"], 4)
        assert float(cells[8]) == round(summary["stderr"], 4) and summary["stderr"] > 0
    assert rows[("morality_0shot", "reference")][3] == "0"
    assert document["n-samples"]["morality_0shot"] == {"original": 6, "effective": 5}
    assert document["config"]["random_seed"] == 2 and document["git_hash"] == run.results["git_sha"]
    assert document["configs"]["morality_0shot"]["task"] == "morality_0shot"
    extra = document["vlm_morality_bench"]["metrics"]["morality_0shot"]["reference,none"]
    assert (extra["ci_low"], extra["ci_high"]) == (scores["morality_0shot"]["reference"]["ci_low"],
                                                   scores["morality_0shot"]["reference"]["ci_high"])

    sample_files = lm_eval_utils.get_sample_results_filenames(files)
    by_task = {lm_eval_utils.get_file_task_name(Path(f).name): f for f in sample_files}
    assert set(by_task) == {"morality_0shot", "morality_0shot_mc"}
    # One timestamp for the run's files (lm-eval's helper leaves ".json" on results files).
    assert len({lm_eval_utils.get_file_datetime(Path(f).name).removesuffix(".json")
                for f in files}) == 1
    for task, path in by_task.items():
        lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
        assert [x["doc_id"] for x in lines] == list(range(5))
        metric = "acc" if task.endswith("_mc") else "reference"
        mean = sum(x[metric] for x in lines) / len(lines)
        assert mean == pytest.approx(document["results"][task][f"{metric},none"])
        first = lines[0]
        assert set(first) >= {"doc", "target", "arguments", "resps", "filtered_resps", "filter",
                              "metrics", "doc_hash", "prompt_hash", "target_hash"}
        assert first["arguments"]["gen_args_0"]["arg_0"].endswith("A:")
    mc = [json.loads(x) for x in Path(by_task["morality_0shot_mc"]).read_text().splitlines()]
    assert len(mc[0]["arguments"]) == len(mc[0]["resps"]) == 2  # one request per choice
