"""TaskIndex: every task, group and tag in the task folders, found by name.

Files are only read here (``harness.tasks.yaml_io``); a task's keys are validated when the
task is asked for (``harness.tasks.config``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import BenchError, unknown
from harness.paths import TASKS_DIR
from harness.tasks.checks import str_list
from harness.tasks.config import TaskConfig, build_task_config
from harness.tasks.groups import DerivedTask, GroupConfig, aggregate_group, parse_group
from harness.tasks.yaml_io import read_yaml, resolve_includes


class TaskIndex:
    """Every task, group and tag found in the built-in folder and ``--include-path`` folders.

    Files are only read here; a task's YAML is validated when the task is asked for. A file
    that cannot be read at all is kept in ``broken`` (path -> its error) and skipped, so one
    broken user YAML stops neither ``--list-tasks`` nor a run of other tasks. Group files
    (``harness.tasks.groups``) may define member tasks, which are indexed as tasks.
    """

    def __init__(self, include_paths: Iterable[str | Path] = (), builtin: bool = True) -> None:
        self.include_paths = tuple(str(Path(p).resolve()) for p in include_paths)
        self._task_files: dict[str, Path] = {}
        self._derived: dict[str, DerivedTask] = {}
        self._groups: dict[str, GroupConfig] = {}
        self._tags: dict[str, list[str]] = {}
        self.broken: dict[str, str] = {}
        folders = ([TASKS_DIR] if builtin else []) + [Path(p) for p in self.include_paths]
        for folder in folders:
            if not folder.is_dir():
                raise BenchError(f"--include-path {folder}: not a folder of task YAMLs")
            for path in sorted(folder.rglob("*.yaml")):
                try:
                    self._index_file(path)
                except BenchError as exc:
                    self.broken[str(path)] = str(exc)

    def _index_file(self, path: Path) -> None:
        raw = read_yaml(path)
        name = raw.get("task")
        if isinstance(raw.get("group"), str) and isinstance(name, list):
            groups, derived = parse_group(resolve_includes(path), path)
            for config in groups:
                self._groups[config.group] = config
            for tag in groups[0].tags:
                self._tags.setdefault(tag, []).append(groups[0].group)
            for task in derived:
                self._derived[task.name] = task
        elif isinstance(name, str):
            # Later folders (the user's) override built-in tasks of the same name.
            self._task_files[name] = path
            merged = resolve_includes(path)
            for tag in str_list(f"{path}:tag", merged.get("tag")) + str_list(
                    f"{path}:group", merged.get("group")):
                self._tags.setdefault(tag, []).append(name)
        # A file with no task name is a template for others to include.

    @property
    def task_names(self) -> list[str]:
        return sorted(set(self._task_files) | set(self._derived))

    @property
    def group_names(self) -> list[str]:
        return sorted(self._groups)

    @property
    def tag_names(self) -> list[str]:
        return sorted(self._tags)

    def group_members(self, name: str) -> tuple[str, ...]:
        if name in self._groups:
            return self._groups[name].tasks
        return tuple(self._tags.get(name, ()))

    def group(self, name: str) -> GroupConfig | None:
        """A group's config (its members, ``aggregate_metric_list``), or None for a task or tag."""
        return self._groups.get(name)

    def group_rows(self, names: Iterable[str], task_metrics: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
        """lm-eval's rows for every group among ``names`` (and the groups inside them) that
        has an ``aggregate_metric_list``, from the tasks' ``{"metric,filter": {...}}``."""
        rows: dict[str, dict[str, Any]] = {}

        def visit(name: str, seen: tuple[str, ...]) -> None:
            group = self._groups.get(name)
            if group is None or name in seen:
                return
            for member in group.tasks:
                visit(member, (*seen, name))
            if group.aggregate_metric_list:
                rows[name] = aggregate_group(group, self.expand([name]), task_metrics)

        for name in names:
            visit(name, ())
        return rows

    def load(self, name: str) -> TaskConfig:
        """The validated config of one task."""
        if name in self._derived:
            return self._load_derived(self._derived[name])
        path = self._task_files.get(name)
        if path is None:
            raise self._unknown(name)
        sources: dict[str, str] = {}
        return build_task_config(resolve_includes(path, sources=sources), path, sources)

    def _load_derived(self, task: DerivedTask) -> TaskConfig:
        """A group's member task: its base task's keys (if it names one) under the group's."""
        sources: dict[str, str] = {}
        base: dict[str, Any] = {}
        if task.base in self._task_files:
            base_path = self._task_files[task.base]
            base = resolve_includes(base_path, sources=sources)
            sources.update({key: str(base_path) for key in base if key not in sources})
        elif task.base in self._groups or task.base in self._tags:
            raise BenchError(f"{task.source}:task: member '{task.base}' is a group; keys that "
                             "change a group's members are not supported, name its tasks instead")
        sources.update({key: task.source for key in task.keys})
        raw = {**base, **task.keys, "task": task.name}
        return build_task_config(raw, Path(task.source), sources)

    def _unknown(self, name: str) -> BenchError:
        """A task that is not indexed: its own file's error if it is broken, else a suggestion."""
        for path, error in self.broken.items():
            if Path(path).stem == name:
                return BenchError(error)
        hint = "See --list-tasks."
        if self.broken:
            hint += f" ({len(self.broken)} task file(s) could not be read and were skipped.)"
        return unknown("task", name, self.all_names(), hint)

    def all_names(self) -> list[str]:
        return sorted(set(self._task_files) | set(self._derived) | set(self._groups) | set(self._tags))

    def expand(self, names: Iterable[str], _seen: tuple[str, ...] = ()) -> list[str]:
        """Task names for a mix of task, group and tag names, in order, without duplicates."""
        tasks: list[str] = []
        for name in names:
            if name in self._task_files or name in self._derived:
                members = [name]
            elif name in self._groups or name in self._tags:
                if name in _seen:
                    where = self._groups[name].source if name in self._groups else f"tag '{name}'"
                    raise BenchError(f"group '{name}' contains itself; fix {where}")
                members = self.expand(self.group_members(name), (*_seen, name))
            else:
                raise self._unknown(name)
            tasks.extend(m for m in members if m not in tasks)
        return tasks
