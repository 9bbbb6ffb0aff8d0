"""A run's lm-eval-format files load with lm-eval 0.4's own helpers and print its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.evaluate import evaluate
from tests.conftest import shown_as

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
            assert shown_as(cells[6], scores[task][judge]["strict_accuracy"])
            continue
        summary = scores[task]["loglikelihood" if metric == "acc" else metric]
        assert cells[2] == "none" and cells[5] == "↑"
        # The table prints 4 decimals (its writer drops trailing zeros).
        assert shown_as(cells[6], summary["accuracy"])
        assert shown_as(cells[8], summary["stderr"]) and summary["stderr"] > 0
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


def _table_rows(document: dict) -> dict[tuple[str, str, str], list[str]]:
    """lm-eval's own ``make_table`` of a results file, by (task, filter, metric)."""
    rows = {}
    task = ""
    for line in lm_eval_utils.make_table(document).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        task = cells[0] or task
        rows[(task, cells[2], cells[4])] = cells
    return rows


def test_lm_eval_reads_the_lm_eval_metrics_of_a_run(metric_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = evaluate("random", "morality_em,morality_mcc", include_paths=[str(metric_tasks)],
                   output_dir=out, seed=5)
    files = sorted(str(p) for p in (out / "random").iterdir())
    document = json.loads(Path(lm_eval_utils.get_latest_filename(
        lm_eval_utils.get_results_filenames(files))).read_text())
    rows = _table_rows(document)
    metrics = run.results["metrics"]
    for task, by_key in metrics.items():
        for key, entry in by_key.items():
            name, _, filter_key = key.partition(",")
            cells = rows.pop((task, filter_key, name))
            assert shown_as(cells[6], entry["value"])
            assert cells[8] == ("N/A" if entry["stderr"] is None else f"{entry['stderr']:.4f}")
            assert cells[5] == ("↑" if entry["higher_is_better"] else "↓")
            assert document["results"][task][f"{name}_stderr,{filter_key}"] == (
                "N/A" if entry["stderr"] is None else entry["stderr"])
    # What is left: the judges' rows (the reference judge reads the first filter, "word"); the
    # loglikelihood judge's acc is lm-eval's acc, so it does not come twice.
    assert set(rows) == {("morality_em", "word", "reference"),
                         ("morality_em", "word", "reference_strict")}
    assert metrics["morality_mcc"]["mcc,none"]["stderr"] > 0  # bootstrapped: a number, not N/A
    assert document["higher_is_better"]["morality_em"]["bleu"] is True
    assert document["config"]["bootstrap_iters"] == 100_000
    assert "loglikelihood,none" in document["vlm_morality_bench"]["metrics"]["morality_mcc"]

    # The samples files: one line per (document, filter), a document's filters in turn.
    by_task = {lm_eval_utils.get_file_task_name(Path(f).name): f
               for f in lm_eval_utils.get_sample_results_filenames(files)}
    lines = [json.loads(x) for x in Path(by_task["morality_em"]).read_text().splitlines()]
    assert [x["filter"] for x in lines] == ["word", "lower"] * 6
    assert [x["doc_id"] for x in lines] == [i for i in range(6) for _ in range(2)]
    for filter_key in ("word", "lower"):
        mine = [x for x in lines if x["filter"] == filter_key]
        assert set(mine[0]["metrics"]) >= {"exact_match", "bleu"}
        assert sum(x["exact_match"] for x in mine) / 6 == metrics["morality_em"][
            f"exact_match,{filter_key}"]["value"]
        assert all(x["bleu"] == [x["target"], x["filtered_resps"][0]] for x in mine)
    assert {x["filtered_resps"][0] for x in lines if x["filter"] == "lower"} <= {"yes.", "no."}
    assert "reference" in lines[0]["metrics"] and "reference" not in lines[1]["metrics"]
    mc = [json.loads(x) for x in Path(by_task["morality_mcc"]).read_text().splitlines()]
    assert all(len(x["mcc"]) == 2 and x["acc"] in (0.0, 1.0) for x in mc)
