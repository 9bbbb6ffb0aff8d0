"""Task YAML loading: safe YAML, ``include``, groups, tags, ``!function`` and validation.

The vocabulary is lm-evaluation-harness's, so a YAML written by an lm-eval user either
loads or fails with a ``file:key`` error that says what to change. This module only reads
and checks configuration; it loads no data and renders no template.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from harness.errors import BenchError, did_you_mean, unknown
from harness.hashing import stable_hash
from harness.paths import TASKS_DIR
from harness.safety import check_yaml_size, check_yaml_source, inside

#: Keys a task YAML may carry (lm-eval's names wherever lm-eval has one).
TASK_KEYS = frozenset({
    "task", "tag", "group", "include", "task_alias", "description",
    "dataset_path", "dataset_name", "dataset_kwargs",
    "training_split", "validation_split", "test_split", "fewshot_split",
    "process_docs", "process_results", "doc_to_text", "doc_to_target", "doc_to_choice", "doc_to_image",
    "doc_to_visual", "lmms_eval_specific_kwargs",
    "num_fewshot", "fewshot_config", "fewshot_delimiter", "target_delimiter", "gen_prefix",
    "output_type", "generation_kwargs", "repeats", "filter_list", "metric_list", "metadata",
})
#: lm-eval keys that change nothing about our results; accepted with a warning.
IGNORED_KEYS = frozenset({"should_decontaminate", "doc_to_decontamination_query", "unsafe_code"})
GROUP_KEYS = frozenset({"group", "group_alias", "task", "aggregate_metric_list", "metadata", "include"})
OUTPUT_TYPES = ("generate_until", "multiple_choice", "loglikelihood", "loglikelihood_rolling")
FEWSHOT_CONFIG_KEYS = frozenset({"sampler", "seed", "samples", "split", "doc_to_text",
                                 "doc_to_target", "doc_to_choice", "gen_prefix",
                                 "fewshot_delimiter", "target_delimiter"})
SAMPLERS = ("random", "default", "first_n")
GENERATION_KEYS = frozenset({"max_new_tokens", "max_gen_toks", "temperature", "top_k", "top_p",
                             "until", "do_sample"})


_loaded_functions: dict[tuple[str, str], Callable[..., Any]] = {}


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function file.name`` reference, resolved against the folder of its YAML file."""

    spec: str
    base_dir: str

    def load(self, where: str) -> Callable[..., Any]:
        module_name, _, attr = self.spec.rpartition(".")
        if not module_name or not attr or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
            raise BenchError(f"{where}: !function '{self.spec}' must be 'module.function' naming "
                             "a .py file beside the YAML (no folders)")
        path = Path(self.base_dir) / f"{module_name}.py"
        cached = _loaded_functions.get((str(path), attr))
        if cached is not None:
            return cached
        if not path.is_file():
            raise BenchError(f"{where}: !function '{self.spec}' needs {path}, which does not exist")
        # A symlink may not lead the import out of the YAML's folder.
        path = inside(path, self.base_dir, f"{where}: !function file")
        unique = f"_vmb_task_fn_{stable_hash(str(path), 10)}_{module_name}"
        spec = importlib.util.spec_from_file_location(unique, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        function = getattr(module, attr, None)
        if not callable(function):
            names = [n for n in vars(module) if not n.startswith("_")]
            raise BenchError(f"{where}: {path.name} has no function '{attr}'.{did_you_mean(attr, names)}")
        _loaded_functions[(str(path), attr)] = function
        return function

    def __str__(self) -> str:
        return f"!function {self.spec}"


# The C loader when PyYAML has it (parsing every task file is on the path of --list-tasks).
class _TaskLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML plus ``!function``; the base folder is set per file."""

    base_dir = "."


def _function_constructor(loader: _TaskLoader, node: yaml.Node) -> FunctionRef:
    spec = loader.construct_scalar(node)  # type: ignore[arg-type]
    return FunctionRef(str(spec).strip(), loader.base_dir)


_TaskLoader.add_constructor("!function", _function_constructor)


_yaml_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML file as a mapping; ``!function`` is the only tag beyond safe YAML."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None
    check_yaml_size(path, stat.st_size)
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _yaml_cache:
        _yaml_cache[key] = _parse_yaml(path)
    return dict(_yaml_cache[key])


def _parse_yaml(path: Path) -> dict[str, Any]:
    loader_cls = type("_Loader", (_TaskLoader,), {"base_dir": str(path.parent)})
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_source(path, text)
        data = yaml.load(text, Loader=loader_cls)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise BenchError(f"{path}{line}: not valid YAML ({problem}); fix the syntax") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not UTF-8 text (byte {exc.start}); save the YAML as UTF-8") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a task YAML must be a mapping of keys, not {type(data).__name__}")
    return data


def resolve_includes(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's keys over those of its ``include`` chain (recursive, cycle-checked)."""
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise BenchError(f"{_chain[-1]}:include: include cycle {cycle}; remove one include")
    data = read_yaml(path)
    include = data.pop("include", None)
    if include is None:
        return data
    includes = [include] if isinstance(include, str) else include
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise BenchError(f"{path}:include: must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for name in includes:
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        if not target.is_file():
            raise BenchError(f"{path}:include: '{name}' not found next to the YAML ({target})")
        merged.update(resolve_includes(target, (*_chain, path)))
    merged.update(data)
    return merged


@dataclass(frozen=True)
class FewshotConfig:
    """lm-eval's ``fewshot_config``: how demonstrations are drawn and, when set, rendered.

    A None override means the task's own key (``doc_to_text``, ``target_delimiter``, ...).
    ``samples`` is a fixed list of demonstration documents, or a ``!function`` returning one.
    """

    sampler: str = "default"
    seed: int = 1234
    split: str | None = None
    samples: Any = None
    doc_to_text: Any = None
    doc_to_target: Any = None
    doc_to_choice: Any = None
    gen_prefix: str | None = None
    fewshot_delimiter: str | None = None
    target_delimiter: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    """A validated task YAML (includes resolved). Templates stay unrendered here."""

    task: str
    source: str
    dataset_path: str
    dataset_name: str | None = None
    dataset_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str = ""
    training_split: str | None = None
    validation_split: str | None = None
    test_split: str | None = None
    fewshot_split: str | None = None
    process_docs: FunctionRef | None = None
    process_results: FunctionRef | None = None
    doc_to_text: Any = None
    doc_to_target: Any = None
    doc_to_choice: Any = None
    doc_to_image: Any = None
    num_fewshot: int = 0
    fewshot_config: FewshotConfig = FewshotConfig()
    gen_prefix: str | None = None
    fewshot_delimiter: str = "\n\n"
    target_delimiter: str = " "
    output_type: str = "generate_until"
    generation_kwargs: Mapping[str, Any] = field(default_factory=dict)
    repeats: int = 1
    filter_list: tuple[Mapping[str, Any], ...] = ()
    metric_list: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: lmms-eval's per-model prompt settings; its ``default`` entry goes to the functions
    #: (doc_to_text, doc_to_visual, ...) that take a second argument.
    lmms_eval_specific_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def eval_split(self) -> str:
        split = self.test_split or self.validation_split
        if split is None:
            raise BenchError(f"{self.source}:test_split: task '{self.task}' names no test_split "
                             "or validation_split to evaluate on")
        return split

    @property
    def demo_split(self) -> str | None:
        return (self.fewshot_config.split or self.fewshot_split or self.training_split
                or self.validation_split)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view for reports and hashes (functions as their ``!function`` text)."""

        def safe(value: Any) -> Any:
            if isinstance(value, FunctionRef):
                return str(value)
            if isinstance(value, FewshotConfig):
                return {name: safe(getattr(value, name)) for name in value.__dataclass_fields__}
            if isinstance(value, Mapping):
                return {str(k): safe(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [safe(v) for v in value]
            return value

        return {name: safe(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any],
                  function_dirs: Mapping[str, str] | None = None) -> TaskConfig:
        """The config ``to_dict`` recorded (a run's results.json), rebuilt.

        ``function_dirs`` (``function_dirs()`` at the time) says where each ``!function``
        resolves; without it, beside the recorded YAML.
        """
        source = str(data["source"])
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in data:
                continue
            base_dir = (function_dirs or {}).get(item.name, str(Path(source).parent))
            values[item.name] = _function_refs(data[item.name], base_dir)
        for name in ("tags", "filter_list", "metric_list"):
            values[name] = tuple(values.get(name) or ())
        if isinstance(values.get("fewshot_config"), Mapping):
            values["fewshot_config"] = FewshotConfig(**values["fewshot_config"])
        return cls(**values)

    def function_dirs(self) -> dict[str, str]:
        """Where each key's ``!function`` resolves (to rebuild it from a report), nested ones
        (a ``metric_list`` entry's) too."""
        return {name: ref.base_dir for name in self.__dataclass_fields__
                if (ref := _first_ref(getattr(self, name))) is not None}

    def config_hash(self) -> str:
        data = self.to_dict()
        data.pop("source")
        return stable_hash(data)


def _int(where: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"{where}: must be an integer >= {minimum}, got {value!r}")
    return value


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BenchError(f"{where}: must be a name or a list of names")
    return tuple(values)


def _dict_list(where: str, value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BenchError(f"{where}: must be a list of mappings")
    return tuple(value)


def _metadata(where: str, value: Any) -> dict[str, Any]:
    """``metadata`` as a mapping, or a list of mappings (lmms-eval's form) merged in order."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return {k: v for entry in value for k, v in entry.items()}
    raise BenchError(f"{where}:metadata: must be a mapping or a list of mappings")


def _lmms_kwargs(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BenchError(f"{where}:lmms_eval_specific_kwargs: must be a mapping")
    return dict(value)


def _sub_mapping(raw: Mapping[str, Any], name: str, allowed: Iterable[str], noun: str,
                 where: str) -> dict[str, Any]:
    """``raw[name]`` as a dict (empty when absent), every key checked against ``allowed``."""
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise BenchError(f"{where}:{name}: must be a mapping")
    for key in value:
        if key not in allowed:
            raise BenchError(f"{where}:{name}.{key}: unknown {noun}."
                             f"{did_you_mean(str(key), allowed)}")
    return value


def _function_refs(value: Any, base_dir: str) -> Any:
    """``value`` with each ``!function`` text (``TaskConfig.to_dict``'s) a ``FunctionRef`` again."""
    if isinstance(value, str) and value.startswith("!function "):
        return FunctionRef(value.split(" ", 1)[1], base_dir)
    if isinstance(value, Mapping):
        return {k: _function_refs(v, base_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_function_refs(v, base_dir) for v in value]
    return value


def _first_ref(value: Any) -> FunctionRef | None:
    if isinstance(value, FunctionRef):
        return value
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list | tuple) else ()
    return next((ref for item in items if (ref := _first_ref(item)) is not None), None)


def build_task_config(raw: Mapping[str, Any], source: Path) -> TaskConfig:
    """Validate a task's merged keys; every error names ``file:key``."""
    where = str(source)
    for key in raw:
        if key in IGNORED_KEYS:
            warnings.warn(f"{where}:{key}: lm-eval key ignored by this harness", stacklevel=2)
        elif key not in TASK_KEYS:
            raise BenchError(f"{where}:{key}: unknown task key.{did_you_mean(str(key), TASK_KEYS)}")
    name = raw.get("task")
    if not isinstance(name, str) or not name:
        raise BenchError(f"{where}:task: must be the task's name")
    if not raw.get("dataset_path"):
        raise BenchError(f"{where}:dataset_path: missing; name a hub dataset id or a local folder")
    for key in ("doc_to_text",):
        if raw.get(key) is None:
            raise BenchError(f"{where}:{key}: missing; every task needs a prompt template")
    output_type = raw.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise BenchError(f"{where}:output_type: '{output_type}' is not supported."
                         f"{did_you_mean(str(output_type), OUTPUT_TYPES)} Use one of {list(OUTPUT_TYPES)}")
    if output_type == "multiple_choice" and raw.get("doc_to_choice") is None:
        raise BenchError(f"{where}:doc_to_choice: a multiple_choice task needs its choices")
    if raw.get("doc_to_target") is None:
        raise BenchError(f"{where}:doc_to_target: missing; name the reference answer")
    for key in ("dataset_name", "training_split", "validation_split", "test_split", "fewshot_split",
                "description", "fewshot_delimiter", "target_delimiter", "dataset_path", "gen_prefix"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise BenchError(f"{where}:{key}: must be a string, got {raw[key]!r}")
    process_docs = raw.get("process_docs")
    if process_docs is not None and not isinstance(process_docs, FunctionRef):
        raise BenchError(f"{where}:process_docs: must be '!function file.name'")
    process_results = raw.get("process_results")
    if process_results is not None and not isinstance(process_results, FunctionRef):
        raise BenchError(f"{where}:process_results: must be '!function file.name'")
    generation = _sub_mapping(raw, "generation_kwargs", GENERATION_KEYS, "setting", where)
    fewshot_raw = _sub_mapping(raw, "fewshot_config", FEWSHOT_CONFIG_KEYS, "key", where)
    samples = fewshot_raw.get("samples")
    if samples is not None and not isinstance(samples, FunctionRef) and not (
            isinstance(samples, list) and all(isinstance(d, dict) for d in samples)):
        raise BenchError(f"{where}:fewshot_config.samples: must be a list of documents or "
                         "'!function file.name' returning one")
    for key in ("gen_prefix", "fewshot_delimiter", "target_delimiter"):
        if fewshot_raw.get(key) is not None and not isinstance(fewshot_raw[key], str):
            raise BenchError(f"{where}:fewshot_config.{key}: must be a string")
    sampler = fewshot_raw.get("sampler", "default")
    if sampler not in SAMPLERS:
        raise BenchError(f"{where}:fewshot_config.sampler: unknown sampler '{sampler}'."
                         f"{did_you_mean(str(sampler), SAMPLERS)}")
    fewshot = FewshotConfig(sampler=sampler,
                            seed=_int(f"{where}:fewshot_config.seed", fewshot_raw.get("seed", 1234)),
                            split=fewshot_raw.get("split"), samples=samples,
                            **{key: fewshot_raw.get(key) for key in (
                                "doc_to_text", "doc_to_target", "doc_to_choice", "gen_prefix",
                                "fewshot_delimiter", "target_delimiter")})
    num_fewshot = _int(f"{where}:num_fewshot", raw.get("num_fewshot", 0) or 0)
    config = TaskConfig(
        task=name,
        source=where,
        dataset_path=raw["dataset_path"],
        dataset_name=raw.get("dataset_name"),
        dataset_kwargs=dict(raw.get("dataset_kwargs") or {}),
        tags=_str_list(f"{where}:tag", raw.get("tag")) + _str_list(f"{where}:group", raw.get("group")),
        description=raw.get("description") or "",
        training_split=raw.get("training_split"),
        validation_split=raw.get("validation_split"),
        test_split=raw.get("test_split"),
        fewshot_split=raw.get("fewshot_split"),
        process_docs=process_docs,
        process_results=process_results,
        doc_to_text=raw.get("doc_to_text"),
        doc_to_target=raw.get("doc_to_target"),
        doc_to_choice=raw.get("doc_to_choice"),
        doc_to_image=raw.get("doc_to_image", raw.get("doc_to_visual")),  # lmms-eval's name
        lmms_eval_specific_kwargs=_lmms_kwargs(where, raw.get("lmms_eval_specific_kwargs")),
        num_fewshot=num_fewshot,
        fewshot_config=fewshot,
        fewshot_delimiter=raw.get("fewshot_delimiter", "\n\n"),
        target_delimiter=raw.get("target_delimiter", " "),
        gen_prefix=raw.get("gen_prefix"),
        output_type=output_type,
        generation_kwargs=dict(generation),
        repeats=_int(f"{where}:repeats", raw.get("repeats", 1), minimum=1),
        filter_list=_dict_list(f"{where}:filter_list", raw.get("filter_list")),
        metric_list=_dict_list(f"{where}:metric_list", raw.get("metric_list")),
        metadata=_metadata(where, raw.get("metadata")),
    )
    if config.num_fewshot and output_type == "loglikelihood_rolling":
        raise BenchError(f"{where}:num_fewshot: a loglikelihood_rolling task scores each text "
                         "alone; remove num_fewshot")
    if config.num_fewshot and config.demo_split is None and samples is None:
        raise BenchError(f"{where}:fewshot_split: num_fewshot is {num_fewshot} but no split to "
                         "draw demonstrations from; set fewshot_split")
    return config


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
            for tag in _str_list(f"{path}:tag", merged.get("tag")) + _str_list(
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
