"""Task: a config's documents turned into ``Instance``s, each holding its ``Request``.

It puts together what the other task modules make: the description, the demonstrations
(``harness.tasks.fewshot``), the rendered question and choices (``harness.tasks.render``) and
the images (with an ablation, ``harness.tasks.ablation``). It calls no model; output filters
are ``harness.tasks.filters``'.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from harness.errors import BenchError
from harness.hashing import ListHash, derive_seed, image_id, stable_hash
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
from harness.tasks.generation import generation_settings
from harness.tasks.render import Renderer, document_id, json_safe_doc, needs_delimiter
from harness.types import Content, ImagePart, Request, TextPart

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

    @cached_property
    def multiple_input(self) -> bool:
        """lm-eval's test on the first item: ``doc_to_text`` gives an index into the choices."""
        if self.config.output_type != "multiple_choice" or not self.eval_docs:
            return False
        return self.render.input_index(self.eval_docs[0], self.doc_id(self.eval_docs[0], 0)) is not None

    @cached_property
    def mutual_info(self) -> bool:
        """``acc_mutual_info`` is asked for, so each choice is also scored without a context."""
        return self.config.output_type == "multiple_choice" and any(
            entry.get("metric") == "acc_mutual_info" for entry in self.config.metric_list)

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
                text = self.fewshot.demonstration(demo, demo_id, self.multiple_input)
                demo_images = self._image_parts(demo_split, demo, demo_id)
                parts.extend(self._interleave(text, self._shown_images(
                    demo_split, demo, demo_id, demo_images, ablation, run_seed)))
            own_images = self._image_parts(split, doc, doc_id)
            shown = self._shown_images(split, doc, doc_id, own_images, ablation, run_seed)
            prefix = self.render.gen_prefix(config.gen_prefix, doc, doc_id)
            choices = self.render.choices(doc, doc_id)
            contexts: tuple[tuple[Content, ...], ...] = ()
            gold: int | None
            gold_index = self.render.input_index(doc, doc_id) if self.multiple_input else None
            if gold_index is not None:  # lm-eval: one context per choice, one continuation
                if not 0 <= gold_index < len(choices):
                    raise BenchError(f"{config.source}:doc_to_text: item {doc_id} gave index "
                                     f"{gold_index}, outside its {len(choices)} choices")
                contexts = tuple(tuple(_merge_text([*parts, *self._interleave(c + prefix, shown)]))
                                 for c in choices)
                merged = _merge_text(parts)
                target, gold = choices[gold_index], gold_index
                answer = self.render.raw_target(doc, doc_id)
                continuations = (config.target_delimiter + answer,) * len(choices)
            else:
                question = self.render.text(doc, doc_id)
                if prefix:  # lm-eval: the answer's start, after the question
                    question += (config.target_delimiter if needs_delimiter(question, prefix) else "") + prefix
                parts.extend(self._interleave(question, shown))
                merged = _merge_text(parts)
                target, gold = self.render.target(doc, doc_id, choices)
                continuations = tuple(config.target_delimiter + c for c in choices)
            if config.output_type == "loglikelihood":  # lm-eval: (context, doc_to_target)
                continuations = (target,)
            elif config.output_type == "loglikelihood_rolling":  # the target text alone
                merged = [TextPart(target)]
            elif self.mutual_info:  # lm-eval: each choice again, after an empty context
                contexts = (contexts or (tuple(merged),) * len(choices)) + ((),) * len(choices)
                continuations += tuple(config.target_delimiter + c for c in choices)
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
                    continuations=continuations, contexts=contexts,
                    target=continuations[gold] if gold is not None else target,
                )
                yield Instance(
                    task=self.name, doc_id=doc_id, repeat=repeat, request=request,
                    image_ids=image_ids, fewshot_ids=tuple(d for d, _ in demos), target=target,
                    expected=expected if expected in ("yes", "no") else None,
                    choices=choices, gold=gold, doc=safe_doc,
                    # The document is the same under every ablation; the prompt is not.
                    doc_hash=stable_hash({"doc": safe_doc, "images": own_ids}),
                    prompt_hash=stable_hash({"text": request.text, "images": all_image_ids,
                                             **_contexts_text(contexts)}),
                    target_hash=stable_hash(target), cluster_id=cluster_id,
                )


def _as_dataset(docs: list[dict[str, Any]]) -> Any:
    """The documents as a ``datasets.Dataset``, which lm-eval's ``process_docs`` receive."""
    import datasets

    return datasets.Dataset.from_list(docs)


def _contexts_text(contexts: tuple[tuple[Content, ...], ...]) -> dict[str, Any]:
    """The per-choice prompts for the prompt hash (nothing when there are none, so the hash of
    every other prompt stays what it was)."""
    if not contexts:
        return {}
    return {"contexts": ["".join(p.text if isinstance(p, TextPart) else p.image_id for p in c)
                         for c in contexts]}


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
