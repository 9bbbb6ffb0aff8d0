"""Task: a config's documents rendered into Requests.

Renders ``doc_to_text`` / ``doc_to_target`` / ``doc_to_choice`` / ``doc_to_image`` with Jinja2
in its immutable sandbox (StrictUndefined: a missing field is an error, never an empty
string; a template reaching for code is an error, never run), draws lm-eval-style
few-shot demonstrations with a seed that depends only on the item, and turns each
(document, repeat) into an ``Instance`` holding its ``Request``. It calls no model;
output filters are ``harness.tasks.filters``'.
"""

from __future__ import annotations

import ast
import functools
import json
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import jinja2

from harness.errors import BenchError, did_you_mean
from harness.hashing import ListHash, derive_seed, image_id, stable_hash
from harness.safety import as_float, as_int, sandbox_violation, template_environment
from harness.tasks.ablation import (
    NO_ABLATION,
    BlankImages,
    ShufflePool,
    ablate,
    check_ablation,
    shuffle_seed,
)
from harness.tasks.config import FunctionRef, TaskConfig
from harness.tasks.data import load_split
from harness.tasks.filters import check_filters
from harness.types import Content, GenerationSettings, ImagePart, Request, TextPart

IMAGE_PLACEHOLDER = "<image>"


@functools.lru_cache(maxsize=256)
def _template(source: str) -> jinja2.Template:
    """A compiled template: compiling costs far more than rendering, and a task renders the
    same few templates for every item."""
    return template_environment().from_string(source)


@dataclass(frozen=True)
class InstanceFields:
    """What an instance and its sample (``harness.run.samples.Sample``) both record."""

    task: str
    doc_id: str
    repeat: int
    image_ids: tuple[str, ...]
    fewshot_ids: tuple[str, ...]
    target: str
    expected: str | None
    choices: tuple[str, ...]
    gold: int | None
    doc: Mapping[str, Any] = field(compare=False)
    doc_hash: str = ""
    prompt_hash: str = ""
    target_hash: str = ""
    #: The item's own image when an image ablation shows another or none (see Sample.cluster).
    cluster_id: str | None = None


@dataclass(frozen=True)
class Instance(InstanceFields):
    """One (document, repeat) of a task, ready to send to a model."""

    request: Request = field(kw_only=True)

    @property
    def key(self) -> str:
        return self.request.request_id


def json_safe_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without images and with every value JSON-serialisable."""
    safe: dict[str, Any] = {}
    for key, value in doc.items():
        if hasattr(value, "mode") and hasattr(value, "size"):
            continue
        try:
            json.dumps(value)
            safe[key] = value
        except TypeError:
            safe[key] = str(value)
    return safe


def generation_settings(kwargs: Mapping[str, Any], where: str,
                        fewshot_delimiter: str = "\n\n") -> GenerationSettings:
    """lm-eval ``generation_kwargs`` as our settings, with lm-eval's defaults.

    What a YAML leaves out is lm-eval's: greedy unless a temperature above 0 is given, at most
    256 new tokens (``max_gen_toks`` before ``max_new_tokens``), and stop at the
    ``fewshot_delimiter`` unless ``until`` is given.
    """
    settings = GenerationSettings(max_new_tokens=256, temperature=0.0, until=(fewshot_delimiter,))
    values: dict[str, Any] = {}
    at = f"{where}:generation_kwargs"
    for key in ("max_new_tokens", "max_gen_toks"):  # max_gen_toks wins, as in lm-eval
        if key in kwargs:
            values["max_new_tokens"] = as_int(f"{at}.{key}", kwargs[key], 1)
    if "temperature" in kwargs:
        values["temperature"] = as_float(f"{at}.temperature", kwargs["temperature"], 0.0)
    if "top_k" in kwargs:
        values["top_k"] = as_int(f"{at}.top_k", kwargs["top_k"], 0)
    if "top_p" in kwargs:
        values["top_p"] = as_float(f"{at}.top_p", kwargs["top_p"], 0.0, 1.0, above=True)
    if kwargs.get("do_sample") is False:
        values["temperature"] = 0.0
    until = kwargs.get("until")
    if until is not None:
        values["until"] = (until,) if isinstance(until, str) else tuple(str(u) for u in until)
    settings = replace(settings, **values)
    if settings.max_new_tokens < 1 or settings.temperature < 0 or settings.top_k < 0:
        raise BenchError(f"{where}:generation_kwargs: max_new_tokens must be >= 1, temperature "
                         "and top_k >= 0")
    return settings


class Task:
    """A task config plus its documents; builds ``Instance``s for a run."""

    def __init__(self, config: TaskConfig, *, num_fewshot: int | None = None) -> None:
        if num_fewshot is not None:
            if num_fewshot and config.demo_split is None and config.fewshot_config.samples is None:
                raise BenchError(f"--num-fewshot {num_fewshot}: task '{config.task}' has no split "
                                 "to draw demonstrations from")
            config = replace(config, num_fewshot=num_fewshot)
        self.config = config
        self.name = config.task
        self.generation = generation_settings(config.generation_kwargs, config.source,
                                              config.fewshot_delimiter)
        check_filters(config)
        self._docs: dict[str, list[dict[str, Any]]] = {}
        self._image_ids: dict[tuple[str, str], tuple[str, ...]] = {}
        self._default_draw_cache: dict[str, list[int]] = {}
        self._blanks = BlankImages()
        self._shuffle_pools: dict[str, ShufflePool] = {}

    # -- documents ---------------------------------------------------------------------------
    def docs(self, split: str) -> list[dict[str, Any]]:
        if split not in self._docs:
            config = self.config
            docs = load_split(config.dataset_path, split, dataset_name=config.dataset_name,
                              dataset_kwargs=config.dataset_kwargs, yaml_source=config.source)
            if config.process_docs is not None:
                function = config.process_docs.load(f"{config.source}:process_docs")
                docs = [dict(d) for d in function(_as_dataset(docs))]
                if not docs:
                    raise BenchError(f"{config.source}:process_docs: returned no documents")
            self._docs[split] = docs
        return self._docs[split]

    @cached_property
    def eval_docs(self) -> list[dict[str, Any]]:
        return self.docs(self.config.eval_split)

    @cached_property
    def demo_docs(self) -> list[dict[str, Any]]:
        """The demonstration pool: the fewshot split, ``fewshot_config.samples``, train, validation."""
        config = self.config
        # lm-eval's order: a named fewshot split, then the samples, then train / validation.
        samples = None if config.fewshot_config.split or config.fewshot_split else config.fewshot_config.samples
        if isinstance(samples, FunctionRef):
            samples = samples.load(f"{self.config.source}:fewshot_config.samples")()
        if samples is not None:
            return [dict(d) for d in samples]
        split = self.config.demo_split
        assert split is not None
        return self.docs(split)

    @property
    def _demo_from_split(self) -> bool:
        config = self.config
        return bool(config.fewshot_config.split or config.fewshot_split
                    or config.fewshot_config.samples is None)

    @staticmethod
    def doc_id(doc: Mapping[str, Any], index: int) -> str:
        return str(doc.get("id", index))

    # -- rendering ---------------------------------------------------------------------------
    def _value(self, key: str, spec: Any, doc: Mapping[str, Any], doc_id: str) -> Any:
        where = f"{self.config.source}:{key}"
        if isinstance(spec, FunctionRef):
            return _call(spec.load(where), doc, self.config.lmms_eval_specific_kwargs)
        if isinstance(spec, str):
            if spec in doc:
                return doc[spec]
            try:
                return _template(spec).render(**doc)
            except jinja2.exceptions.SecurityError as exc:
                raise sandbox_violation(where, exc) from None
            except jinja2.UndefinedError as exc:
                missing = re.search(r"'([^']+)' is undefined", str(exc))
                name = missing.group(1) if missing else str(exc)
                raise BenchError(f"{where}: template uses '{name}', which item {doc_id} lacks."
                                 f"{did_you_mean(name, doc)}") from None
            except jinja2.TemplateError as exc:
                raise BenchError(f"{where}: bad template ({exc}); fix the Jinja syntax") from None
        if isinstance(spec, list):
            return [self._value(key, item, doc, doc_id) if isinstance(item, str) and "{{" in item
                    else item for item in spec]
        return spec

    def render_text(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> str:
        """``doc_to_text`` (or ``spec``, e.g. a fewshot_config override) for one document."""
        return str(self._value("doc_to_text", spec if spec is not None else self.config.doc_to_text,
                               doc, doc_id))

    def choices(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> tuple[str, ...]:
        if self.config.output_type != "multiple_choice":
            return ()
        value = self._value("doc_to_choice", spec if spec is not None else self.config.doc_to_choice,
                            doc, doc_id)
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                pass
        if not isinstance(value, list | tuple) or len(value) < 2:
            raise BenchError(f"{self.config.source}:doc_to_choice: item {doc_id} gave {value!r}; "
                             "choices must be a list of at least two strings")
        return tuple(str(v) for v in value)

    def target(self, doc: Mapping[str, Any], doc_id: str, choices: tuple[str, ...],
               spec: Any = None) -> tuple[str, int | None]:
        value = self._value("doc_to_target", spec if spec is not None else self.config.doc_to_target,
                            doc, doc_id)
        if not choices:
            return str(value), None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(choices):
                raise BenchError(f"{self.config.source}:doc_to_target: item {doc_id} gave index "
                                 f"{value}, outside its {len(choices)} choices")
            return choices[value], value
        if str(value) in choices:
            return str(value), choices.index(str(value))
        raise BenchError(f"{self.config.source}:doc_to_target: item {doc_id} gave {value!r}, "
                         f"neither an index nor one of {list(choices)}")

    def images(self, doc: Mapping[str, Any], doc_id: str) -> list[Any]:
        spec = self.config.doc_to_image
        if spec is None:
            return []
        names = spec if isinstance(spec, list) else [spec]
        found: list[Any] = []
        for name in names:
            if isinstance(name, FunctionRef):
                value = _call(name.load(f"{self.config.source}:doc_to_image"), doc,
                              self.config.lmms_eval_specific_kwargs)
            elif isinstance(name, str) and name in doc:
                value = doc[name]
            else:
                raise BenchError(f"{self.config.source}:doc_to_image: item {doc_id} has no column "
                                 f"'{name}'.{did_you_mean(str(name), doc)}")
            for image in value if isinstance(value, list) else [value]:
                if not (hasattr(image, "mode") and hasattr(image, "size")):
                    raise BenchError(f"{self.config.source}:doc_to_image: item {doc_id}'s '{name}' "
                                     "is not an image")
                found.append(image)
        return found

    def _image_parts(self, split: str, doc: Mapping[str, Any], doc_id: str) -> list[ImagePart]:
        images = self.images(doc, doc_id)
        key = (split, doc_id)
        if key not in self._image_ids:
            self._image_ids[key] = tuple(image_id(image) for image in images)
        return [ImagePart(ident, image) for ident, image in zip(self._image_ids[key], images)]

    def _shuffle_pool(self, split: str) -> ShufflePool:
        if split not in self._shuffle_pools:
            docs = self.docs(split)
            self._shuffle_pools[split] = ShufflePool(
                [(doc, self._image_parts(split, doc, self.doc_id(doc, index)))
                 for index, doc in enumerate(docs)])
        return self._shuffle_pools[split]

    def _shown_images(self, split: str, doc: Mapping[str, Any], doc_id: str,
                      own: list[ImagePart], ablation: str, run_seed: int) -> list[Content]:
        """What the prompt shows for a document's images under ``ablation``."""
        if ablation == NO_ABLATION or not own:
            return list(own)
        return ablate(ablation, own, doc, doc_id, where=self.config.source, blanks=self._blanks,
                      pool=self._shuffle_pool(split) if ablation == "shuffle" else None,
                      seed=shuffle_seed(run_seed, split, doc_id))

    @staticmethod
    def _interleave(text: str, images: Sequence[Content]) -> list[Content]:
        """Images go where ``<image>`` stands in the text, or before the text if it has none."""
        if IMAGE_PLACEHOLDER not in text:
            return [*images, TextPart(text)] if text else list(images)
        pieces = text.split(IMAGE_PLACEHOLDER)
        if len(pieces) - 1 != len(images):
            raise BenchError(f"prompt has {len(pieces) - 1} {IMAGE_PLACEHOLDER} placeholders for "
                             f"{len(images)} images; make them match")
        parts: list[Content] = []
        for index, piece in enumerate(pieces):
            if piece:
                parts.append(TextPart(piece))
            if index < len(images):
                parts.append(images[index])
        return parts

    # -- few-shot ----------------------------------------------------------------------------
    def draw_demonstrations(self, doc_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The k demonstrations for one item.

        ``first_n`` takes the first k of the demonstration split and ``default`` draws as
        lm-eval does (one generator seeded once, drawing for the items in order); ``random``
        draws with a seed of (fewshot seed, task, item id) only. An item is left out of its own
        demonstrations only when they come from its own split.
        """
        k = self.config.num_fewshot
        if not k:
            return []
        split = self.config.demo_split
        pool = [(self.doc_id(d, i), d) for i, d in enumerate(self.demo_docs)]
        own_split = self._demo_from_split and split == self.config.eval_split
        sampler = self.config.fewshot_config.sampler
        if sampler == "default":
            return [pool[i] for i in self._default_draws()[doc_id]]
        if own_split:
            pool = [(ident, d) for ident, d in pool if ident != doc_id]
        if len(pool) < k:
            others = " other" if own_split else ""
            raise BenchError(f"{self.config.source}:num_fewshot: {k} demonstrations asked for but "
                             f"split '{split}' has only {len(pool)}{others} items")
        if sampler == "first_n":
            return pool[:k]
        rng = random.Random(derive_seed(self.config.fewshot_config.seed, self.name, doc_id))
        return rng.sample(pool, k)

    def _default_draws(self) -> dict[str, list[int]]:
        """lm-eval's ``ContextSampler.sample`` for every evaluation item, in document order."""
        draws = self._default_draw_cache
        if draws:
            return draws
        k, split = self.config.num_fewshot, self.config.demo_split
        pool_size = len(self.demo_docs)
        own_split = self._demo_from_split and split == self.config.eval_split
        if pool_size < k + (1 if own_split else 0):
            raise BenchError(f"{self.config.source}:num_fewshot: {k} demonstrations asked for but "
                             f"split '{split}' has only {pool_size} items")
        rng = random.Random(self.config.fewshot_config.seed)
        for index, doc in enumerate(self.eval_docs):
            doc_id = self.doc_id(doc, index)
            if own_split:
                drawn = [i for i in rng.sample(range(pool_size), k + 1) if i != index][:k]
            else:
                drawn = rng.sample(range(pool_size), k)
            draws[doc_id] = drawn
        return draws

    def _demonstration(self, demo: Mapping[str, Any], demo_id: str) -> str:
        """One demonstration as lm-eval's ``build_qa_turn`` writes it (fewshot_config overrides)."""
        config, fewshot = self.config, self.config.fewshot_config
        target_delimiter = (fewshot.target_delimiter if fewshot.target_delimiter is not None
                            else config.target_delimiter)
        fewshot_delimiter = (fewshot.fewshot_delimiter if fewshot.fewshot_delimiter is not None
                             else config.fewshot_delimiter)
        question = self.render_text(demo, demo_id, fewshot.doc_to_text)
        choices = self.choices(demo, demo_id, fewshot.doc_to_choice)
        answer, _ = self.target(demo, demo_id, choices, fewshot.doc_to_target)
        prefix_spec = fewshot.gen_prefix if fewshot.gen_prefix is not None else config.gen_prefix
        prefix = str(self._value("gen_prefix", prefix_spec, demo, demo_id)) if prefix_spec else ""
        if not prefix:
            return question + target_delimiter + answer + fewshot_delimiter
        delimiter = target_delimiter if _needs_delimiter(question, prefix) else ""
        joined = prefix + " " + answer if _needs_delimiter(prefix, answer) else prefix + answer
        return question + delimiter + joined + fewshot_delimiter

    # -- instances ---------------------------------------------------------------------------
    def instances(self, *, run_seed: int, repeats: int | None = None,
                  limit: int | float | None = None,
                  image_ablation: str = NO_ABLATION) -> list[Instance]:
        """Every (document, repeat) within ``limit``, in document order.

        ``image_ablation`` (``harness.tasks.ablation``) replaces every image of the prompt.
        """
        return list(self.iter_instances(run_seed=run_seed, repeats=repeats, limit=limit,
                                        image_ablation=image_ablation))

    def iter_instances(self, *, run_seed: int, repeats: int | None = None,
                       limit: int | float | None = None,
                       image_ablation: str = NO_ABLATION) -> Iterator[Instance]:
        """``instances`` one at a time, so a run never holds them all."""
        ablation = check_ablation(image_ablation)
        config = self.config
        docs = self.eval_docs
        if limit is not None:
            count = int(len(docs) * limit) if isinstance(limit, float) and limit < 1 else int(limit)
            docs = docs[:max(count, 0)]
        repeats = repeats if repeats is not None else config.repeats
        split = config.eval_split
        for index, doc in enumerate(docs):
            doc_id = self.doc_id(doc, index)
            parts: list[Content] = []
            if config.description:
                parts.append(TextPart(str(self._value("description", config.description, doc, doc_id))))
            demos = self.draw_demonstrations(doc_id)
            demo_split = (config.demo_split or "") if self._demo_from_split else "<samples>"
            for demo_id, demo in demos:
                text = self._demonstration(demo, demo_id)
                demo_images = self._image_parts(demo_split, demo, demo_id)
                parts.extend(self._interleave(text, self._shown_images(
                    demo_split, demo, demo_id, demo_images, ablation, run_seed)))
            own_images = self._image_parts(split, doc, doc_id)
            shown = self._shown_images(split, doc, doc_id, own_images, ablation, run_seed)
            question = self.render_text(doc, doc_id)
            if config.gen_prefix:  # lm-eval: the answer's start, after the question
                prefix = str(self._value("gen_prefix", config.gen_prefix, doc, doc_id))
                question += (config.target_delimiter if _needs_delimiter(question, prefix) else "") + prefix
            parts.extend(self._interleave(question, shown))
            merged = _merge_text(parts)
            choices = self.choices(doc, doc_id)
            target, gold = self.target(doc, doc_id, choices)
            continuations = tuple(config.target_delimiter + c for c in choices)
            if config.output_type == "loglikelihood":  # lm-eval: (context, doc_to_target)
                continuations = (target,)
            elif config.output_type == "loglikelihood_rolling":  # the target text alone
                merged = [TextPart(target)]
            expected = str(doc.get("expected", "")).lower() or None
            safe_doc = json_safe_doc(doc)
            own_ids = tuple(p.image_id for p in own_images)
            image_ids = tuple(p.image_id for p in shown if isinstance(p, ImagePart))
            cluster_id = own_ids[0] if ablation != NO_ABLATION and own_ids else None
            all_image_ids = [p.image_id for p in merged if isinstance(p, ImagePart)]
            for repeat in range(repeats):
                request = Request(
                    request_id=f"{self.name}/{doc_id}/{repeat}",
                    parts=tuple(merged),
                    generation=self.generation,
                    seed=derive_seed(run_seed, self.name, doc_id, repeat),
                    continuations=continuations,
                    target=continuations[gold] if gold is not None else target,
                )
                yield Instance(
                    task=self.name, doc_id=doc_id, repeat=repeat, request=request,
                    image_ids=image_ids, fewshot_ids=tuple(d for d, _ in demos), target=target,
                    expected=expected if expected in ("yes", "no") else None,
                    choices=choices, gold=gold, doc=safe_doc,
                    # The document is the same under every ablation; the prompt is not.
                    doc_hash=stable_hash({"doc": safe_doc, "images": own_ids}),
                    prompt_hash=stable_hash({"text": request.text, "images": all_image_ids}),
                    target_hash=stable_hash(target), cluster_id=cluster_id,
                )


def _call(function: Callable[..., Any], doc: Mapping[str, Any],
          lmms_kwargs: Mapping[str, Any]) -> Any:
    """A document function; one that takes a second argument gets lmms-eval's ``default`` kwargs."""
    import inspect

    try:
        params = [p for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2 and (lmms_kwargs or params[1].default is inspect.Parameter.empty):
        settings = lmms_kwargs.get("default", lmms_kwargs) if lmms_kwargs else None
        return function(doc, settings)
    return function(doc)


def _needs_delimiter(prefix: str, suffix: str) -> bool:
    """lm-eval's ``requires_delimiter``: neither side has whitespace where they join."""
    return bool(prefix) and bool(suffix) and not (prefix[-1].isspace() or suffix[0].isspace())


def _as_dataset(docs: list[dict[str, Any]]) -> Any:
    """The documents as a ``datasets.Dataset``, which lm-eval's ``process_docs`` receive."""
    import datasets

    return datasets.Dataset.from_list(docs)


def _merge_text(parts: list[Content]) -> list[Content]:
    """Adjacent text parts joined, so a prompt's shape does not depend on how it was built."""
    merged: list[Content] = []
    for part in parts:
        if isinstance(part, TextPart) and merged and isinstance(merged[-1], TextPart):
            merged[-1] = TextPart(merged[-1].text + part.text)
        else:
            merged.append(part)
    return merged


def task_hashes(task: Task, instances: Iterable[Instance]) -> tuple[str, str]:
    """(task hash, prompt hash): the config plus data, and every rendered prompt.

    Hashed as the instances go by, so they need not all be held.
    """
    task_hash = ListHash("docs", {"config": task.config.config_hash()})
    prompt_hash = ListHash()
    for instance in instances:
        if instance.repeat == 0:
            task_hash.add(instance.doc_hash)
            prompt_hash.add(instance.prompt_hash)
    return task_hash.hexdigest(), prompt_hash.hexdigest()
