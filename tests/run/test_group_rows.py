"""A run given a group with an ``aggregate_metric_list`` reports lm-eval's group rows: in
results.json's ``groups``, in the printed summary, in the lm-eval results file (which lm-eval's
own ``make_table`` renders) and again after ``score`` recomputes the tasks' metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.commands.cli import main
from tests.conftest import build_dataset, shown_as

GROUPS = {
    "by_size.yaml": "group: by_size\ngroup_alias: By size\ntask: [morality_mcc, morality_mcc_small]\n"
                    "aggregate_metric_list: [{metric: acc, weight_by_size: true}, {metric: acc_norm}]\n"
                    "metadata: {version: 3}\n",
    "flat.yaml": "group: flat\ntask: [morality_mcc, morality_mcc_small]\n"
                 "aggregate_metric_list: [{metric: acc, weight_by_size: false, filter_list: [none]}]\n",
}


@pytest.fixture()
def group_tasks(metric_tasks: Path, tmp_path: Path) -> Path:
    """Two multiple-choice tasks of 6 and 2 items under two groups, weighted and not."""
    small = build_dataset(tmp_path / "small", n_train=6, n_test=2)
    (metric_tasks / "morality_mcc_small.yaml").write_text(
        f"include: morality_mcc.yaml\ntask: morality_mcc_small\ndataset_path: {small}\n")
    for name, text in GROUPS.items():
        (metric_tasks / name).write_text(text)
    return metric_tasks


def _lm_eval_results(out: Path) -> dict:
    files = sorted(out.glob("*/results_*.json"))
    return json.loads(files[-1].read_text())


def test_group_rows_are_lm_evals_and_survive_score(group_tasks: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    metrics_api = pytest.importorskip("lm_eval.api.metrics")
    lm_utils = pytest.importorskip("lm_eval.utils")
    out = tmp_path / "out"
    assert main(["--model", "random", "--tasks", "by_size,flat", "--include-path", str(group_tasks),
                 "--output-dir", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    run = next((out / "runs").iterdir())
    results = json.loads((run / "results.json").read_text())
    assert set(results["metrics"]) == {"morality_mcc", "morality_mcc_small"}  # no group there
    tasks = results["metrics"]
    sizes = [tasks[t]["acc,none"]["n"] for t in ("morality_mcc", "morality_mcc_small")]
    values = [tasks[t]["acc,none"]["value"] for t in ("morality_mcc", "morality_mcc_small")]
    errors = [tasks[t]["acc,none"]["stderr"] for t in ("morality_mcc", "morality_mcc_small")]
    assert sizes == [6, 2] and values[0] != values[1]  # a weighted mean differs from a plain one
    weighted = results["groups"]["by_size"]["rows"]
    assert weighted["acc,none"]["value"] == pytest.approx(
        metrics_api.aggregate_subtask_metrics(values, sizes, True))
    assert weighted["acc,none"]["stderr"] == pytest.approx(metrics_api.pooled_sample_stderr(errors, sizes))
    assert weighted["acc,none"]["n"] == 8 and "acc_norm,none" in weighted
    flat = results["groups"]["flat"]["rows"]
    assert set(flat) == {"acc,none"}
    assert flat["acc,none"]["value"] == pytest.approx(sum(values) / 2)
    assert flat["acc,none"]["stderr"] == pytest.approx(metrics_api.unweighted_mean_stderr(errors))
    assert "By size" in printed and f"{weighted['acc,none']['value']:.4f}" in printed

    # The lm-eval results file: group rows as lm-eval 0.4.13 writes them, rendered by lm-eval.
    document = _lm_eval_results(out)
    assert document["groups"]["by_size"]["acc,none"] == pytest.approx(weighted["acc,none"]["value"])
    assert document["results"]["flat"]["acc_stderr,none"] == pytest.approx(flat["acc,none"]["stderr"])
    assert document["group_subtasks"]["by_size"] == ["morality_mcc", "morality_mcc_small"]
    assert document["versions"]["by_size"] == "3" and document["versions"]["flat"] == "N/A"
    assert document["higher_is_better"]["by_size"]["acc"] is True
    assert document["groups"]["by_size"]["sample_len"] == 8
    table = lm_utils.make_table(document, "groups")
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[2:]]
    assert [(c[0], c[1], c[4]) for c in cells] == [("By size", "3", "acc"), ("", "", "acc_norm"),
                                                   ("flat", "N/A", "acc")]
    assert shown_as(cells[0][6], weighted["acc,none"]["value"])
    assert shown_as(cells[2][8], flat["acc,none"]["stderr"])
    assert "- morality_mcc_small" in lm_utils.make_table(document)  # indented under its group

    # score recomputes the tasks' metrics, then the group rows from them.
    damaged = {**results, "groups": {name: {**record, "rows": {}}
                                     for name, record in results["groups"].items()}}
    (run / "results.json").write_text(json.dumps(damaged))
    assert main(["score", str(run)]) == 0
    rescored = json.loads((run / "results.json").read_text())
    assert rescored["groups"] == results["groups"]
    assert "By size" in capsys.readouterr().out


def test_a_run_without_groups_writes_no_groups_key(metric_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--model", "random", "--tasks", "morality_mcc", "--include-path", str(metric_tasks),
                 "--output-dir", str(out), "--no-progress"]) == 0
    run = next((out / "runs").iterdir())
    assert "groups" not in json.loads((run / "results.json").read_text())
    assert "groups" not in _lm_eval_results(out)
