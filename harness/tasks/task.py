"""Task: a config's documents turned into ``Instance``s, each holding its ``Request``.

It puts together what the other task modules make: the description, the demonstrations
(``harness.tasks.fewshot``), the rendered question and choices (``harness.tasks.render``) and
the images (with an ablation, ``harness.tasks.ablation``). It calls no model; output filters
are ``harness.tasks.filters``'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from harness.errors import BenchError
from harness.hashing import ListHash, derive_seed, image_id, stable_hash
from harness.safety import as_float, as_int
from harness.tasks.ablation import (
    NO_ABLATION,
    BlankImages,
    ShufflePool,
    ablate,
    check_ablation,
    shuffle_seed,
)
from harness.tasks.config import TaskConfig
from harness.tasks.data import load_split
from harness.tasks.fewshot import FewshotSampler
from harness.tasks.filters import check_filters
from harness.tasks.render import Renderer, document_id, needs_delimiter
from harness.types import Content, GenerationSettings, ImagePart, Request, TextPart

IMAGE_PLACEHOLDER = "<image>"


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
        self.render = Renderer(config)
        self.fewshot = FewshotSampler(config, self.render, self.docs)
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

    doc_id = staticmethod(document_id)

    # -- images ------------------------------------------------------------------------------
    def _image_parts(self, split: str, doc: Mapping[str, Any], doc_id: str) -> list[ImagePart]:
        images = self.render.images(doc, doc_id)
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
                parts.append(TextPart(str(self.render.value("description", config.description, doc, doc_id))))
            demos = self.fewshot.draw(doc_id)
            demo_split = self.fewshot.pool_split
            for demo_id, demo in demos:
                text = self.fewshot.demonstration(demo, demo_id)
                demo_images = self._image_parts(demo_split, demo, demo_id)
                parts.extend(self._interleave(text, self._shown_images(
                    demo_split, demo, demo_id, demo_images, ablation, run_seed)))
            own_images = self._image_parts(split, doc, doc_id)
            shown = self._shown_images(split, doc, doc_id, own_images, ablation, run_seed)
            question = self.render.text(doc, doc_id)
            if config.gen_prefix:  # lm-eval: the answer's start, after the question
                prefix = str(self.render.value("gen_prefix", config.gen_prefix, doc, doc_id))
                question += (config.target_delimiter if needs_delimiter(question, prefix) else "") + prefix
            parts.extend(self._interleave(question, shown))
            merged = _merge_text(parts)
            choices = self.render.choices(doc, doc_id)
            target, gold = self.render.target(doc, doc_id, choices)
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
