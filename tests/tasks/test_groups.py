"""Group files as lm-eval writes them: inline tasks, changed members, tags, aggregate_metric_list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.tasks.groups import AggregateMetric, GroupConfig, aggregate_group
from harness.tasks.index import TaskIndex

BASE = "dataset_path: some/data\ntest_split: test\ndoc_to_text: 'Q: {{question}}'\ndoc_to_target: answer\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_group_with_inline_tasks_changed_members_subgroups_and_tag(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\n")
    write(tmp_path, "b.yaml", BASE + "task: b\n")
    write(tmp_path, "g.yaml", f"""group: g
tag: [suite]
task:
  - a
  - task: b
    num_fewshot: 0
    repeats: 3
  - task: fresh
    {BASE.replace(chr(10), chr(10) + '    ').rstrip()}
  - group: inner
    task: [a]
    num_fewshot: 0
aggregate_metric_list:
  - metric: acc
    weight_by_size: false
    filter_list: none
  - {{metric: exact_match}}
  - {{metric: !function fns.smoothed_bleu_4}}
metadata: {{version: 2}}
""")
    index = TaskIndex([tmp_path], builtin=False)
    assert not index.broken
    assert index.expand(["suite"]) == ["a", "g::b", "g::fresh", "g::inner::a"]
    group = index.group("g")
    assert group is not None and group.tasks == ("a", "g::b", "g::fresh", "g::inner")
    assert group.aggregate_metric_list == (AggregateMetric("acc", "mean", False, ("none",)),
                                           AggregateMetric("exact_match"),
                                           AggregateMetric("smoothed_bleu_4"))
    assert group.metadata == {"version": 2} and group.tags == ("suite",)
    changed = index.load("g::b")
    assert changed.task == "g::b" and changed.repeats == 3 and changed.dataset_path == "some/data"
    assert index.load("g::fresh").doc_to_text == "Q: {{question}}"
    assert index.load("g::inner::a").num_fewshot == 0


def test_group_level_keys_change_every_member(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\n")
    write(tmp_path, "g.yaml", "group: g\ntask: [a]\nrepeats: 2\n")
    index = TaskIndex([tmp_path], builtin=False)
    assert index.expand(["g"]) == ["g::a"] and index.load("g::a").repeats == 2
    assert index.load("a").repeats == 1  # the task itself is unchanged


@pytest.mark.parametrize(("text", "message"), [
    ("group: g\ntask: [a]\nrepeat: 2\n", r"g.yaml:repeat: unknown group key. Did you mean 'repeats'"),
    ("group: g\ntask: [a]\naggregate_metric_list: [{metric: acc, weight: 1}]\n",
     r"aggregate_metric_list\[0\].weight: unknown key"),
    ("group: g\ntask: [a]\naggregate_metric_list: [{metric: acc, aggregation: median}]\n",
     r"aggregation: 'median' is not supported"),
    ("group: g\ntask: [a]\naggregate_metric_list: [{metric: acc, weight_by_size: 'yes'}]\n",
     r"weight_by_size: must be true or false"),
    ("group: g\ntask: [[a]]\n", r"g.yaml:task\[0\]: a member is a task name or a mapping"),
])
def test_bad_group_files_are_skipped_with_their_error(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\n")
    write(tmp_path, "g.yaml", text)
    index = TaskIndex([tmp_path], builtin=False)
    assert index.task_names == ["a"]
    assert any(re.search(message, error) for error in index.broken.values()), index.broken


def test_changed_member_task_keys_are_checked_against_the_group_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\n")
    write(tmp_path, "g.yaml", "group: g\ntask: [{task: a, output_type: multiple_choise}]\n")
    with pytest.raises(BenchError, match=r"g.yaml:output_type: 'multiple_choise' is not supported"):
        TaskIndex([tmp_path], builtin=False).load("g::a")


def _metrics(value: float, n: int, stderr: float | None = None, unscored: int = 0) -> dict:
    entry = {"value": value, "n": n, "n_unscored": unscored}
    return entry if stderr is None else {**entry, "stderr": stderr}


def test_aggregate_group_is_lm_evals_weighted_mean_and_pooled_stderr() -> None:
    metrics_api = pytest.importorskip("lm_eval.api.metrics")
    tasks = {"x": {"acc,none": _metrics(0.5, 10, 0.1), "acc,flex": _metrics(1.0, 10)},
             "y": {"acc,none": _metrics(0.8, 28, 0.05, unscored=2)}}
    weighted = GroupConfig("g", ("x", "y"), "g.yaml", aggregate_metric_list=(AggregateMetric("acc"),))
    rows = aggregate_group(weighted, ["x", "y"], tasks)
    assert rows["acc,none"]["value"] == pytest.approx(
        metrics_api.aggregate_subtask_metrics([0.5, 0.8], [10, 30], True))
    assert rows["acc,none"]["stderr"] == pytest.approx(
        metrics_api.pooled_sample_stderr([0.1, 0.05], [10, 30]))
    assert rows["acc,none"]["n"] == 40
    # Filters are found in the tasks' rows; one task alone gives its own value, no stderr.
    assert rows["acc,flex"]["value"] == 1.0 and rows["acc,flex"]["stderr"] is None
    plain = GroupConfig("g", ("x", "y"), "g.yaml",
                        aggregate_metric_list=(AggregateMetric("acc", weight_by_size=False,
                                                               filter_list=("none",)),))
    rows = aggregate_group(plain, ["x", "y"], tasks)
    assert set(rows) == {"acc,none"}
    assert rows["acc,none"]["value"] == pytest.approx(0.65)
    assert rows["acc,none"]["stderr"] == pytest.approx(
        metrics_api.unweighted_mean_stderr([0.1, 0.05]))


def test_group_rows_cover_nested_groups_with_an_aggregate_metric_list(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", BASE + "task: a\n")
    write(tmp_path, "b.yaml", BASE + "task: b\n")
    write(tmp_path, "inner.yaml", "group: inner\ntask: [b]\naggregate_metric_list: [{metric: acc}]\n")
    write(tmp_path, "outer.yaml", "group: outer\ntask: [a, inner]\n"
                                  "aggregate_metric_list: [{metric: acc, weight_by_size: true}]\n")
    tasks = {"a": {"acc,none": _metrics(1.0, 1)}, "b": {"acc,none": _metrics(0.0, 3)}}
    rows = TaskIndex([tmp_path], builtin=False).group_rows(["outer", "a"], tasks)
    assert set(rows) == {"outer", "inner"}
    assert rows["outer"]["acc,none"]["value"] == pytest.approx(0.25)
    assert rows["inner"]["acc,none"]["value"] == 0.0
