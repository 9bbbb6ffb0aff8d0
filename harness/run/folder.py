"""The run folder: where each file of a run lives, and reading and writing its records.

``<output-dir>/runs/<run_name>/`` holds ``responses.jsonl`` (the journal), ``samples.jsonl``,
``results.json``, ``annotations.jsonl`` and ``images/``. Every command and stage finds these
files here, reads samples as typed ``Sample``s and results as ``Results``, and writes through
``harness.files`` (atomic replaces, flushed appends, JSON Lines). This module judges nothing
and computes no score.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.files import iter_jsonl, write_json_atomic, write_jsonl_atomic
from harness.judges.human.annotations import ANNOTATIONS_FILE
from harness.run.samples import Sample

RUNS_DIR = "runs"
CACHE_DIR = "cache"
LEADERBOARD_FILE = "leaderboard.jsonl"
JOURNAL_FILE = "responses.jsonl"
SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
IMAGES_DIR = "images"
LOCK_FILE = ".lock"
RESULTS_SCHEMA = 1
REWRITE_HINT = "run the benchmark again to rewrite the folder"


@dataclass(frozen=True)
class Results:
    """``results.json``: what a run was (model, tasks, judges, settings) and its scores.

    Keys a newer or older harness wrote that this one does not know are kept in ``extra``
    and written back unchanged.
    """

    run_name: str
    created: str = ""
    model: Mapping[str, Any] = field(default_factory=dict)
    tasks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    judges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int = 0
    repeats: int | None = None
    limit: int | float | None = None
    #: The image ablation (``harness.tasks.ablation``); None in runs written before ablations,
    #: which showed every item's own images (``none``).
    image_ablation: str | None = None
    #: An int, or ``"auto"`` (then ``batch_sizes`` holds the size it settled on).
    batch_size: int | str | None = None
    batch_sizes: tuple[int, ...] = ()
    #: ``--gen-kwargs`` applied over every generate_until task's, or None.
    gen_kwargs: Mapping[str, Any] | None = None
    #: ``--samples``: the items chosen by task, or None (all, or ``limit``).
    samples: Mapping[str, Any] | None = None
    #: ``--seed``'s fourth value: the few-shot draw seed of every task, or None.
    fewshot_seed: int | None = None
    predict_only: bool = False
    num_fewshot: int | None = None
    include_paths: tuple[str, ...] = ()
    cached_responses: int = 0
    #: This invocation's wall time per stage (``load_s``, ``generate_s``, ``judge_s``).
    timing: Mapping[str, float] | None = None
    #: Tokens the server reported for this invocation's fresh responses.
    usage: Mapping[str, int | None] | None = None
    scores: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: lm-eval metrics by task (``{task: {"metric,filter": {value, ...}}}``), for tasks whose
    #: ``metric_list`` names any (``harness.judges.metrics``).
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: lm-eval's group rows (``harness.tasks.groups.group_record``) by group, for the groups
    #: with an ``aggregate_metric_list`` that ``--tasks`` named: ``{group: {alias, subtasks,
    #: tasks, version, aggregate_metric_list, rows: {"metric,filter": {value, stderr, n,
    #: tasks}}}}``. Kept apart from ``metrics``, whose every name is a task.
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    versions: Mapping[str, str | None] | None = None
    git_sha: str | None = None
    samples_schema: int | None = None
    #: Judge-human agreement (``run_bench.py agreement``), when computed.
    agreement: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    schema: int = RESULTS_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema": self.schema}
        for item in fields(self):
            if item.name in ("schema", "extra") or (
                    item.name in ("agreement", "image_ablation") and getattr(self, item.name) is None
                    or item.name == "groups" and not self.groups):
                continue
            value = getattr(self, item.name)
            data[item.name] = list(value) if item.name in ("include_paths", "batch_sizes") else value
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = RESULTS_FILE) -> Results:
        schema = data.get("schema", RESULTS_SCHEMA)
        if not isinstance(schema, int) or schema > RESULTS_SCHEMA:
            raise BenchError(f"{where}: schema {schema!r} is newer than this harness reads "
                             f"({RESULTS_SCHEMA}); update vlm-morality-bench")
        names = {item.name for item in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        known["include_paths"] = tuple(known.get("include_paths") or ())
        known["batch_sizes"] = tuple(known.get("batch_sizes") or ())
        try:
            return cls(**known, extra={k: v for k, v in data.items() if k not in names})
        except TypeError as exc:
            raise BenchError(f"{where}: lacks fields ({exc}); {REWRITE_HINT}") from None

    def with_changes(self, **changes: Any) -> Results:
        return replace(self, **changes)


class _FileIn:
    """A file of the run folder by name: ``folder.journal`` is ``folder.path / JOURNAL_FILE``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, folder: RunFolder, owner: type | None = None) -> Path:
        return folder.path / self.name


@dataclass(frozen=True)
class RunFolder:
    """One run's folder and the paths of its files."""

    path: Path

    @classmethod
    def of(cls, output_dir: str | os.PathLike[str], run_name: str) -> RunFolder:
        return cls(runs_dir(output_dir) / run_name)

    journal = _FileIn(JOURNAL_FILE)
    samples_file = _FileIn(SAMPLES_FILE)
    results_file = _FileIn(RESULTS_FILE)
    annotations = _FileIn(ANNOTATIONS_FILE)
    images = _FileIn(IMAGES_DIR)

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"cannot create the run folder {self.path}: {exc.strerror}; "
                             "choose a writable --output-dir") from None

    @contextmanager
    def locked(self, take: bool = True) -> Iterator[None]:
        """Hold the folder's lock while it is written; a second writer is told, not let in.

        Two copies of one command would otherwise both generate every item and both append
        leaderboard rows for the same run. The helper ranks of a data-parallel run share the
        folder with their rank 0, which alone takes the lock (``take``).
        """
        if not take:
            yield
            return
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise BenchError(f"{self.path} is being written by another process (the same "
                             "command is running); wait for it to finish, then run again to "
                             "reuse its results") from None
        except OSError as exc:
            raise BenchError(f"cannot lock the run folder {self.path}: {exc.strerror}; choose "
                             "a writable --output-dir") from None
        try:
            yield
        finally:
            lock.release()

    def sample_dicts(self) -> Iterator[dict[str, Any]]:
        """The lines of ``samples.jsonl``, in file order, as plain dicts, one at a time.

        The file is replaced atomically, never appended to, so a damaged line means the folder
        was damaged by hand or on disk: that is an error naming the line, not something to skip.
        """
        path = self.samples_file
        if not path.is_file():
            raise BenchError(f"{self.path} has no samples.jsonl: its run has not finished (run "
                             "the same command again) or it is not a run folder (output/runs/NAME)")
        damaged: list[Any] = []
        for _, sample in iter_jsonl(path, damaged):
            if damaged:
                break
            yield sample
        if damaged:
            raise BenchError(f"{path}:{damaged[0].number}: damaged sample ({damaged[0].reason}); "
                             f"{REWRITE_HINT}")

    def iter_samples(self) -> Iterator[Sample]:
        """The samples of ``samples.jsonl`` as ``Sample``s, one at a time."""
        for index, raw in enumerate(self.sample_dicts(), start=1):
            try:
                yield Sample.from_dict(raw)
            except (TypeError, KeyError) as exc:
                raise BenchError(f"{self.samples_file}: sample {index} lacks fields ({exc}); "
                                 f"{REWRITE_HINT}") from None

    def read_samples(self) -> list[Sample]:
        return list(self.iter_samples())

    def read_results(self) -> Results:
        import json

        path = self.results_file
        if not path.is_file():
            raise BenchError(f"{self.path}: no results.json; pass a run folder (output/runs/NAME) "
                             "whose run has finished")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # bad JSON or UTF-8, or an unreadable file
            raise BenchError(f"{path}: not readable JSON ({exc}); {REWRITE_HINT}") from None
        if not isinstance(data, dict):
            raise BenchError(f"{path} is damaged (not a JSON object); {REWRITE_HINT}")
        return Results.from_dict(data, str(path))

    def write_samples(self, samples: Iterable[Sample]) -> None:
        write_jsonl_atomic(self.samples_file, (sample.to_dict() for sample in samples))

    def write_results(self, results: Results) -> None:
        write_json_atomic(self.results_file, results.to_dict())

    def write(self, results: Results, samples: Iterable[Sample]) -> None:
        """``samples.jsonl`` then ``results.json``: a folder with results has its samples."""
        self.write_samples(samples)
        self.write_results(results)


def runs_dir(output_dir: str | os.PathLike[str]) -> Path:
    return Path(output_dir) / RUNS_DIR


def leaderboard_file(output_dir: str | os.PathLike[str]) -> Path:
    return Path(output_dir) / LEADERBOARD_FILE


def cache_dir(output_dir: str | os.PathLike[str]) -> Path:
    return Path(output_dir) / CACHE_DIR


def read_samples(run_dir: str | os.PathLike[str]) -> list[Sample]:
    return RunFolder(Path(run_dir)).read_samples()


def read_results(run_dir: str | os.PathLike[str]) -> Results:
    return RunFolder(Path(run_dir)).read_results()
