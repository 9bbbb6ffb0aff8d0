"""Group files as lm-eval writes them, and a group's rows from its tasks' metrics.

A group file names its members in ``task:``: task, group or tag names, mappings that name a
task with keys to change (``{task: arc_easy, num_fewshot: 5}``), mappings that define a new
task inline, and mappings that define a subgroup inline (``{group: ..., task: [...]}``).
Keys of the group file that are not group keys change every member, as in lm-eval. A member
whose keys change, and a task defined inline, is a task of its own named ``group::name``
(lm-eval's name for inline tasks). ``aggregate_metric_list`` says which metrics the group
reports: lm-eval's weighted mean of its tasks' values (``aggregate_group``).

It reads no file; ``harness.tasks.index`` hands it each group file's keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.tasks.checks import KEY_CUTOFF, dict_list, metadata_mapping, str_list
from harness.tasks.config import TASK_KEYS
from harness.tasks.yaml_io import FunctionRef

GROUP_KEYS = frozenset({"group", "group_alias", "task", "aggregate_metric_list", "metadata",
                        "include", "tag"})
AGGREGATE_KEYS = frozenset({"metric", "aggregation", "weight_by_size", "filter_list"})


@dataclass(frozen=True)
class AggregateMetric:
    """One ``aggregate_metric_list`` entry (lm-eval's ``AggMetricConfig``).

    ``filter_list`` None means every filter its tasks report the metric under.
    """

    metric: str
    #: "mean" or a ``!function``, which lm-eval 0.4 accepts and then does not call: a group
    #: is always the (weighted) mean of its tasks, so here too.
    aggregation: str = "mean"
    weight_by_size: bool = True
    filter_list: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GroupConfig:
    """A group: its members in order and what it reports."""

    group: str
    tasks: tuple[str, ...]
    source: str
    alias: str | None = None
    aggregate_metric_list: tuple[AggregateMetric, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DerivedTask:
    """A member task a group file defines: ``base``'s keys (when ``base`` is a task) under
    ``keys``; a ``base`` that names no task means ``keys`` define the whole task."""

    name: str
    base: str
    keys: Mapping[str, Any]
    source: str


def parse_aggregates(where: str, value: Any) -> tuple[AggregateMetric, ...]:
    """``aggregate_metric_list`` (a mapping or a list of them), checked."""
    entries = dict_list(where, [value] if isinstance(value, dict) else value)
    parsed = []
    for number, entry in enumerate(entries):
        at = f"{where}[{number}]"
        for key in entry:
            if key not in AGGREGATE_KEYS:
                raise BenchError(f"{at}.{key}: unknown key.{did_you_mean(str(key), AGGREGATE_KEYS, KEY_CUTOFF)}")
        metric = entry.get("metric")
        if isinstance(metric, FunctionRef):  # a !function metric's rows carry its name
            metric = metric.spec.rpartition(".")[2]
        if not isinstance(metric, str) or not metric:
            raise BenchError(f"{at}.metric: must be a metric name")
        aggregation = entry.get("aggregation", "mean")
        if isinstance(aggregation, FunctionRef):
            aggregation = str(aggregation)
        elif aggregation != "mean":  # lm-eval's only built-in one
            raise BenchError(f"{at}.aggregation: '{aggregation}' is not supported; lm-eval "
                             "aggregates groups by 'mean' or a !function")
        weight = entry.get("weight_by_size", True)
        if not isinstance(weight, bool):
            raise BenchError(f"{at}.weight_by_size: must be true or false")
        filters = entry.get("filter_list")
        parsed.append(AggregateMetric(metric, aggregation, weight,
                                      None if filters is None else str_list(f"{at}.filter_list", filters)))
    return tuple(parsed)


def parse_group(raw: Mapping[str, Any], path: Path, name: str | None = None
                ) -> tuple[list[GroupConfig], list[DerivedTask]]:
    """A group file's (or an inline subgroup's) groups, outermost first, and derived tasks."""
    where = str(path)
    group = name or raw["group"]
    overrides = {k: v for k, v in raw.items() if k not in GROUP_KEYS}
    for key in overrides:
        if key not in TASK_KEYS:
            raise BenchError(f"{where}:{key}: unknown group key."
                             f"{did_you_mean(str(key), GROUP_KEYS | TASK_KEYS, KEY_CUTOFF)}")
    members = raw.get("task")
    members = [members] if isinstance(members, str | dict) else members
    if not isinstance(members, list) or not members:
        raise BenchError(f"{where}:task: a group needs a list of member tasks")
    names: list[str] = []
    groups: list[GroupConfig] = []
    derived: list[DerivedTask] = []
    for number, entry in enumerate(members):
        at = f"{where}:task[{number}]"
        if isinstance(entry, dict) and "group" in entry and isinstance(entry.get("task"), list | str):
            sub = f"{group}::{entry['group']}"  # an inline subgroup
            sub_groups, sub_derived = parse_group({**overrides, **entry}, path, sub)
            names.append(sub)
            groups.extend(sub_groups)
            derived.extend(sub_derived)
            continue
        if isinstance(entry, dict) and isinstance(entry.get("group"), str):
            names.append(entry["group"])  # an existing group, by name
            continue
        if isinstance(entry, str):
            base, keys = entry, dict(overrides)
        elif isinstance(entry, dict) and isinstance(entry.get("task"), str):
            base, keys = entry["task"], {**overrides, **{k: v for k, v in entry.items() if k != "task"}}
        else:
            raise BenchError(f"{at}: a member is a task name or a mapping with 'task' or 'group'")
        if not keys:
            names.append(base)
            continue
        member = f"{group}::{base}"
        names.append(member)
        derived.append(DerivedTask(member, base, keys, where))
    config = GroupConfig(
        group=group, tasks=tuple(names), source=where,
        alias=raw.get("group_alias") if isinstance(raw.get("group_alias"), str) else None,
        aggregate_metric_list=parse_aggregates(f"{where}:aggregate_metric_list",
                                               raw.get("aggregate_metric_list")),
        tags=str_list(f"{where}:tag", raw.get("tag")) if name is None else (),
        metadata=metadata_mapping(where, raw.get("metadata")))
    return [config, *groups], derived


def aggregate_group(config: GroupConfig, leaf_tasks: Iterable[str],
                    task_metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]
                    ) -> dict[str, dict[str, Any]]:
    """A group's ``{"metric,filter": {value, n, stderr}}`` from its tasks' metrics.

    lm-eval's ``Group.aggregate``: per entry of ``aggregate_metric_list`` and filter, the mean
    of the tasks' values weighted by their item counts (``aggregate_subtask_metrics``; equal
    weights without ``weight_by_size``), with the pooled standard error
    (``pooled_sample_stderr``) or, unweighted, ``unweighted_mean_stderr``, when every task has
    one. ``task_metrics`` is the run's ``{task: {"metric,filter": {value, n, n_unscored, ...}}}``.
    """
    leaves = list(leaf_tasks)
    rows: dict[str, dict[str, Any]] = {}
    for entry in config.aggregate_metric_list:
        filters = entry.filter_list
        if filters is None:
            prefix = f"{entry.metric},"
            filters = tuple(sorted({key[len(prefix):] for task in leaves
                                    for key in task_metrics.get(task, {}) if key.startswith(prefix)}))
        for filter_name in filters:
            key = f"{entry.metric},{filter_name}"
            found = [task_metrics[t][key] for t in leaves
                     if key in task_metrics.get(t, {}) and task_metrics[t][key].get("value") is not None]
            if not found:
                continue
            values = [float(f["value"]) for f in found]
            sizes = [int(f.get("n", 0)) + int(f.get("n_unscored", 0)) for f in found]
            rows[key] = {"value": _weighted(values, sizes, entry), "n": sum(sizes),
                         "tasks": len(found), "stderr": _stderr(found, sizes, entry)}
    return rows


def _weighted(values: Sequence[float], sizes: Sequence[int], entry: AggregateMetric) -> float:
    weights = sizes if entry.weight_by_size else [1] * len(sizes)
    return sum(v * w for v, w in zip(values, weights)) / sum(weights)


def _stderr(found: Sequence[Mapping[str, Any]], sizes: Sequence[int],
            entry: AggregateMetric) -> float | None:
    stderrs = [f.get("stderr") for f in found]
    if any(not isinstance(s, int | float) for s in stderrs):
        return None
    errors = [float(s) for s in stderrs]  # type: ignore[arg-type]
    if not entry.weight_by_size:
        return math.sqrt(sum(s * s for s in errors)) / len(errors)
    if sum(sizes) - len(sizes) <= 0:
        return None
    pooled = sum((n - 1) * s * s * n for n, s in zip(sizes, errors)) / (sum(sizes) - len(sizes))
    return math.sqrt(pooled / sum(sizes))
