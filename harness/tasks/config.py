"""TaskConfig: a task YAML's keys (includes resolved) validated into one typed record.

The vocabulary is lm-evaluation-harness's, so a YAML written by an lm-eval user either
loads or fails with a ``file:key`` error that says what to change. This module only checks
configuration; it reads no file (``harness.tasks.yaml_io``), loads no data and renders no
template.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.hashing import stable_hash
from harness.tasks.checks import (
    KEY_CUTOFF,
    as_count,
    dict_list,
    lmms_kwargs,
    metadata_mapping,
    str_list,
    sub_mapping,
)
from harness.tasks.yaml_io import FunctionRef

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
OUTPUT_TYPES = ("generate_until", "multiple_choice", "loglikelihood", "loglikelihood_rolling")
FEWSHOT_CONFIG_KEYS = frozenset({"sampler", "seed", "samples", "split", "doc_to_text",
                                 "doc_to_target", "doc_to_choice", "gen_prefix",
                                 "fewshot_delimiter", "target_delimiter"})
SAMPLERS = ("random", "default", "first_n")
GENERATION_KEYS = frozenset({"max_new_tokens", "max_gen_toks", "temperature", "top_k", "top_p",
                             "until", "do_sample"})


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


def build_task_config(raw: Mapping[str, Any], source: Path,
                      key_sources: Mapping[str, str] | None = None) -> TaskConfig:
    """Validate a task's merged keys; every error names ``file:key``.

    ``key_sources`` (from ``resolve_includes``) says which included file holds a key, so the
    error names that file; a key not in it is the task file's own.
    """
    where = str(source)

    def holder(key: str) -> str:
        return (key_sources or {}).get(key, where)

    def at(key: str) -> str:
        return f"{holder(key)}:{key}"

    for key in raw:
        if key in IGNORED_KEYS:
            warnings.warn(f"{at(key)}: lm-eval key ignored by this harness", stacklevel=2)
        elif key not in TASK_KEYS:
            raise BenchError(f"{at(key)}: unknown task key.{did_you_mean(str(key), TASK_KEYS, KEY_CUTOFF)}")
    name = raw.get("task")
    if not isinstance(name, str) or not name:
        raise BenchError(f"{at('task')}: must be the task's name")
    if not raw.get("dataset_path"):
        raise BenchError(f"{at('dataset_path')}: missing; name a hub dataset id or a local folder")
    for key in ("doc_to_text",):
        if raw.get(key) is None:
            raise BenchError(f"{at(key)}: missing; every task needs a prompt template")
    output_type = raw.get("output_type", "generate_until")
    if output_type not in OUTPUT_TYPES:
        raise BenchError(f"{at('output_type')}: '{output_type}' is not supported."
                         f"{did_you_mean(str(output_type), OUTPUT_TYPES)} Use one of {list(OUTPUT_TYPES)}")
    if output_type == "multiple_choice" and raw.get("doc_to_choice") is None:
        raise BenchError(f"{at('doc_to_choice')}: a multiple_choice task needs its choices")
    if raw.get("doc_to_target") is None:
        raise BenchError(f"{at('doc_to_target')}: missing; name the reference answer")
    for key in ("dataset_name", "training_split", "validation_split", "test_split", "fewshot_split",
                "description", "fewshot_delimiter", "target_delimiter", "dataset_path", "gen_prefix"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise BenchError(f"{at(key)}: must be a string, got {raw[key]!r}")
    process_docs = raw.get("process_docs")
    if process_docs is not None and not isinstance(process_docs, FunctionRef):
        raise BenchError(f"{at('process_docs')}: must be '!function file.name'")
    process_results = raw.get("process_results")
    if process_results is not None and not isinstance(process_results, FunctionRef):
        raise BenchError(f"{at('process_results')}: must be '!function file.name'")
    generation = sub_mapping(raw, "generation_kwargs", GENERATION_KEYS, "setting", holder("generation_kwargs"))
    fewshot_raw = sub_mapping(raw, "fewshot_config", FEWSHOT_CONFIG_KEYS, "key", holder("fewshot_config"))
    samples = fewshot_raw.get("samples")
    if samples is not None and not isinstance(samples, FunctionRef) and not (
            isinstance(samples, list) and all(isinstance(d, dict) for d in samples)):
        raise BenchError(f"{at('fewshot_config')}.samples: must be a list of documents or "
                         "'!function file.name' returning one")
    for key in ("gen_prefix", "fewshot_delimiter", "target_delimiter"):
        if fewshot_raw.get(key) is not None and not isinstance(fewshot_raw[key], str):
            raise BenchError(f"{at('fewshot_config')}.{key}: must be a string")
    sampler = fewshot_raw.get("sampler", "default")
    if sampler not in SAMPLERS:
        raise BenchError(f"{at('fewshot_config')}.sampler: unknown sampler '{sampler}'."
                         f"{did_you_mean(str(sampler), SAMPLERS)}")
    fewshot = FewshotConfig(sampler=sampler,
                            seed=as_count(f"{at('fewshot_config')}.seed", fewshot_raw.get("seed", 1234)),
                            split=fewshot_raw.get("split"), samples=samples,
                            **{key: fewshot_raw.get(key) for key in (
                                "doc_to_text", "doc_to_target", "doc_to_choice", "gen_prefix",
                                "fewshot_delimiter", "target_delimiter")})
    num_fewshot = as_count(f"{at('num_fewshot')}", raw.get("num_fewshot", 0) or 0)
    config = TaskConfig(
        task=name,
        source=where,
        dataset_path=raw["dataset_path"],
        dataset_name=raw.get("dataset_name"),
        dataset_kwargs=dict(raw.get("dataset_kwargs") or {}),
        tags=str_list(f"{at('tag')}", raw.get("tag")) + str_list(f"{at('group')}", raw.get("group")),
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
        lmms_eval_specific_kwargs=lmms_kwargs(holder("lmms_eval_specific_kwargs"), raw.get("lmms_eval_specific_kwargs")),
        num_fewshot=num_fewshot,
        fewshot_config=fewshot,
        fewshot_delimiter=raw.get("fewshot_delimiter", "\n\n"),
        target_delimiter=raw.get("target_delimiter", " "),
        gen_prefix=raw.get("gen_prefix"),
        output_type=output_type,
        generation_kwargs=dict(generation),
        repeats=as_count(f"{at('repeats')}", raw.get("repeats", 1), minimum=1),
        filter_list=dict_list(f"{at('filter_list')}", raw.get("filter_list")),
        metric_list=dict_list(f"{at('metric_list')}", raw.get("metric_list")),
        metadata=metadata_mapping(holder("metadata"), raw.get("metadata")),
    )
    if config.num_fewshot and output_type == "loglikelihood_rolling":
        raise BenchError(f"{at('num_fewshot')}: a loglikelihood_rolling task scores each text "
                         "alone; remove num_fewshot")
    if config.num_fewshot and config.demo_split is None and samples is None:
        raise BenchError(f"{at('fewshot_split')}: num_fewshot is {num_fewshot} but no split to "
                         "draw demonstrations from; set fewshot_split")
    return config
