"""TaskIndex: every task, group and tag in the task folders, found by name.

Files are only read here (``harness.tasks.yaml_io``); a task's keys are validated when the
task is asked for (``harness.tasks.config``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BenchError, did_you_mean, unknown
from harness.paths import TASKS_DIR
from harness.tasks.checks import str_list
from harness.tasks.config import GROUP_KEYS, TaskConfig, build_task_config
from harness.tasks.yaml_io import read_yaml, resolve_includes


@dataclass(frozen=True)
class GroupConfig:
    group: str
    tasks: tuple[str, ...]
    source: str


class TaskIndex:
    """Every task, group and tag found in the built-in folder and ``--include-path`` folders.

    Files are only read here; a task's YAML is validated when the task is asked for. A file
    that cannot be read at all is kept in ``broken`` (path -> its error) and skipped, so one
    broken user YAML stops neither ``--list-tasks`` nor a run of other tasks.
    """

    def __init__(self, include_paths: Iterable[str | Path] = (), builtin: bool = True) -> None:
        self.include_paths = tuple(str(Path(p).resolve()) for p in include_paths)
        self._task_files: dict[str, Path] = {}
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
        group = raw.get("group")
        if isinstance(group, str) and isinstance(name, list):
            for key in raw:
                if key not in GROUP_KEYS:
                    raise BenchError(f"{path}:{key}: unknown group key.{did_you_mean(str(key), GROUP_KEYS)}")
            members = []
            for entry in name:
                if not isinstance(entry, str):
                    raise BenchError(f"{path}:task: group members must be task names")
                members.append(entry)
            self._groups[group] = GroupConfig(group, tuple(members), str(path))
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
        return sorted(self._task_files)

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

    def load(self, name: str) -> TaskConfig:
        """The validated config of one task."""
        path = self._task_files.get(name)
        if path is None:
            raise self._unknown(name)
        return build_task_config(resolve_includes(path), path)

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
        return sorted(set(self._task_files) | set(self._groups) | set(self._tags))

    def expand(self, names: Iterable[str], _seen: tuple[str, ...] = ()) -> list[str]:
        """Task names for a mix of task, group and tag names, in order, without duplicates."""
        tasks: list[str] = []
        for name in names:
            if name in self._task_files:
                members = [name]
            elif name in self._groups or name in self._tags:
                if name in _seen:
                    raise BenchError(f"group '{name}' contains itself; fix {self._groups[name].source}")
                members = self.expand(self.group_members(name), (*_seen, name))
            else:
                raise self._unknown(name)
            tasks.extend(m for m in members if m not in tasks)
        return tasks
