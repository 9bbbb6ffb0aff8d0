"""What a run is made of: tasks by name, the judges each task is scored by, judges built.

Shared by ``harness.run.evaluate`` (a fresh run), ``harness.commands.score`` (re-judging a
saved run) and ``harness.finetune`` (training on a task's items), so all three resolve names
the same way. Nothing here calls a model or writes a file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.arguments import split_names
from harness.errors import BenchError, unknown
from harness.judges.base import Judge
from harness.judges.item_tally import ItemTally
from harness.judges.metrics import Metric, parse_metric_list
from harness.registry import judge_names, load_judge
from harness.run.samples import LOGLIKELIHOOD
from harness.tasks.config import TaskConfig
from harness.tasks.index import TaskIndex
from harness.tasks.task import Task

log = logging.getLogger(__name__)

#: lm-eval metric names that also give our judge-free multiple-choice score (a judge row).
METRIC_ALIASES = {"acc": LOGLIKELIHOOD}
#: The judge of a generate_until task whose YAML names none.
DEFAULT_JUDGE = "reference"



def resolve_tasks(tasks: str | Iterable[str | Task | TaskConfig], include_paths: Sequence[str],
                  num_fewshot: int | None = None) -> list[Task]:
    """Task objects for names (tasks, groups, tags), configs or tasks."""
    items = split_names(tasks) if isinstance(tasks, str) else list(tasks)
    names = [i for i in items if isinstance(i, str)]
    index = TaskIndex(include_paths) if names else None
    for error in (index.broken.values() if index is not None else ()):
        log.warning("warning: %s; skipped", " ".join(error.split()))
    resolved: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            resolved.append(Task(item.config, num_fewshot=num_fewshot) if num_fewshot is not None else item)
        elif isinstance(item, TaskConfig):
            resolved.append(Task(item, num_fewshot=num_fewshot))
        else:
            assert index is not None
            for name in index.expand([item]):
                resolved.append(Task(index.load(name), num_fewshot=num_fewshot))
    if not resolved:
        raise BenchError("no tasks given; pass --tasks (see --list-tasks)")
    seen: set[str] = set()
    unique = []
    for task in resolved:
        if task.name not in seen:
            seen.add(task.name)
            unique.append(task)
    return unique


def task_metrics(task: Task) -> tuple[list[str], list[Metric]]:
    """The judges and the lm-eval metrics that a task's ``metric_list`` names."""
    return parse_metric_list(task.config.metric_list, task.config.output_type, task.config.source,
                             judge_names(), METRIC_ALIASES, task.config.process_results is not None)


def task_judge_names(task: Task, judges: Sequence[str] | None) -> list[str]:
    """The judges a task is scored by: the given ones, else its ``metric_list``'s judges."""
    output_type = task.config.output_type
    if output_type in ("loglikelihood", "loglikelihood_rolling"):
        return []  # scored by metrics only: there is no answer to judge
    yaml_judges, metrics = task_metrics(task)
    names = list(judges) if judges is not None else yaml_judges
    if judges is None and not names and not metrics and output_type == "generate_until":
        names = [DEFAULT_JUDGE]
    if output_type == "multiple_choice" and LOGLIKELIHOOD not in names:
        names.append(LOGLIKELIHOOD)
    if output_type != "multiple_choice" and LOGLIKELIHOOD in names:
        if judges is None:
            raise BenchError(f"{task.config.source}:metric_list: '{LOGLIKELIHOOD}' needs "
                             "output_type: multiple_choice")
        names.remove(LOGLIKELIHOOD)
    return names


def load_judges(names: Iterable[str], judge_args: Mapping[str, Mapping[str, Any]]) -> dict[str, Judge]:
    """Judges by name, built with their ``--judge-args`` (``loglikelihood`` needs none)."""
    unused = set(judge_args) - set(names)
    if unused:
        name = sorted(unused)[0]
        raise unknown("judge in --judge-args", name, list(names), "Pass it in --judges too.")
    judges: dict[str, Judge] = {}
    for name in names:
        if name == LOGLIKELIHOOD or name in judges:
            continue
        if name not in judge_names():
            raise unknown("judge", name, [*judge_names(), LOGLIKELIHOOD], "See --list-judges.")
        judges[name] = load_judge(name, judge_args.get(name))
    return judges


def bind_tasks(judges: Iterable[Judge], metadata_by_task: Mapping[str, Mapping[str, Any]]) -> None:
    """Hand each judge that takes per-task settings the tasks' YAML metadata."""
    for judge in judges:
        hook = getattr(judge, "bind_tasks", None)
        if hook is not None:
            hook(metadata_by_task)


def metric_tally(task: Task) -> ItemTally | None:
    """A fresh tally of the task's lm-eval metrics (every ``filter_list`` pipeline on one
    filtered value per item, its ``process_results``), or None when its ``metric_list``
    names none."""
    metrics = task_metrics(task)[1]
    if not metrics:
        return None
    config = task.config
    process_results = config.process_results
    return ItemTally(metrics, config.output_type, config.filter_list,
                     process_results.load(f"{config.source}:process_results")
                     if process_results is not None else None, config.source)
