"""Few-shot demonstrations: the pool they come from, which k each item gets, how each is written.

Draws as lm-eval's samplers do (``default``, ``first_n``) or with a per-item seed
(``random``), and writes a demonstration as lm-eval's ``build_qa_turn``. It loads documents
only through the callable it is given and builds no request.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from harness.errors import BenchError
from harness.hashing import derive_seed
from harness.tasks.config import TaskConfig
from harness.tasks.render import Renderer, document_id, needs_delimiter
from harness.tasks.yaml_io import FunctionRef


class FewshotSampler:
    """A task's demonstrations; ``docs(split)`` gives a split's documents (loaded once)."""

    def __init__(self, config: TaskConfig, renderer: Renderer,
                 docs: Callable[[str], list[dict[str, Any]]]) -> None:
        self.config = config
        self.render = renderer
        self._docs = docs
        self._default_draw_cache: dict[str, list[int]] = {}

    @cached_property
    def pool(self) -> list[dict[str, Any]]:
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
        return self._docs(split)

    @property
    def from_split(self) -> bool:
        """Whether demonstrations come from a split (not ``fewshot_config.samples``)."""
        config = self.config
        return bool(config.fewshot_config.split or config.fewshot_split
                    or config.fewshot_config.samples is None)

    @property
    def pool_split(self) -> str:
        """The name the pool's documents are known by (their split, or ``<samples>``)."""
        return (self.config.demo_split or "") if self.from_split else "<samples>"

    def draw(self, item_id: str) -> list[tuple[str, dict[str, Any]]]:
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
        pool = [(document_id(d, i), d) for i, d in enumerate(self.pool)]
        own_split = self.from_split and split == self.config.eval_split
        sampler = self.config.fewshot_config.sampler
        if sampler == "default":
            return [pool[i] for i in self._default_draws()[item_id]]
        if own_split:
            pool = [(ident, d) for ident, d in pool if ident != item_id]
        if len(pool) < k:
            others = " other" if own_split else ""
            raise BenchError(f"{self.config.source}:num_fewshot: {k} demonstrations asked for but "
                             f"split '{split}' has only {len(pool)}{others} items")
        if sampler == "first_n":
            return pool[:k]
        rng = random.Random(derive_seed(self.config.fewshot_config.seed, self.config.task, item_id))
        return rng.sample(pool, k)

    def _default_draws(self) -> dict[str, list[int]]:
        """lm-eval's ``ContextSampler.sample`` for every evaluation item, in document order."""
        draws = self._default_draw_cache
        if draws:
            return draws
        k, split = self.config.num_fewshot, self.config.demo_split
        pool_size = len(self.pool)
        own_split = self.from_split and split == self.config.eval_split
        if pool_size < k + (1 if own_split else 0):
            raise BenchError(f"{self.config.source}:num_fewshot: {k} demonstrations asked for but "
                             f"split '{split}' has only {pool_size} items")
        rng = random.Random(self.config.fewshot_config.seed)
        for index, doc in enumerate(self._docs(self.config.eval_split)):
            if own_split:
                drawn = [i for i in rng.sample(range(pool_size), k + 1) if i != index][:k]
            else:
                drawn = rng.sample(range(pool_size), k)
            draws[document_id(doc, index)] = drawn
        return draws

    def demonstration(self, demo: Mapping[str, Any], demo_id: str, multiple_input: bool = False) -> str:
        """One demonstration as lm-eval's ``build_qa_turn`` writes it (fewshot_config overrides).

        In the multiple-input form the question is the right context and the answer the
        continuation all contexts share.
        """
        config, fewshot = self.config, self.config.fewshot_config
        target_delimiter = (fewshot.target_delimiter if fewshot.target_delimiter is not None
                            else config.target_delimiter)
        fewshot_delimiter = (fewshot.fewshot_delimiter if fewshot.fewshot_delimiter is not None
                             else config.fewshot_delimiter)
        choices = self.render.choices(demo, demo_id, fewshot.doc_to_choice)
        index = self.render.input_index(demo, demo_id, fewshot.doc_to_text) if multiple_input else None
        if index is not None:
            question = choices[index]
            answer = self.render.raw_target(demo, demo_id, fewshot.doc_to_target)
        else:
            question = self.render.text(demo, demo_id, fewshot.doc_to_text)
            answer, _ = self.render.target(demo, demo_id, choices, fewshot.doc_to_target)
        prefix_spec = fewshot.gen_prefix if fewshot.gen_prefix is not None else config.gen_prefix
        prefix = self.render.gen_prefix(prefix_spec, demo, demo_id)
        if not prefix:
            return question + target_delimiter + answer + fewshot_delimiter
        delimiter = target_delimiter if needs_delimiter(question, prefix) else ""
        joined = prefix + " " + answer if needs_delimiter(prefix, answer) else prefix + answer
        return question + delimiter + joined + fewshot_delimiter
