"""The rows of a batch kept apart: each samples, stops and fails on its own.

``RowSampler`` draws each row's next token with that row's own CPU generator (seeded from
its request), ``StopOnStrings`` stops each row at its own stop strings, and ``run_split``
splits a batch that fails (out of memory, or an input the processor or model refuses) down
to the items that fail alone. So an answer never depends on batch size or batch mates. Used
by the transformers adapters; nothing here loads a model or knows a task.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from harness.types import GenerationSettings

T = TypeVar("T")


class RowSampler:
    """A logits processor that samples each batch row with that row's own generator.

    ``generate()`` runs greedy on its output (the chosen token keeps its score, every other
    token gets -inf), so HF still handles caching, padding and stopping while the random
    draw of a row never depends on the other rows. Temperature, top-k and top-p are applied
    here, in float32, on the CPU so the same seed gives the same draw on any device.
    """

    def __init__(self, settings: GenerationSettings, seeds: Sequence[int]) -> None:
        self.settings = settings
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.detach().float().cpu() / self.settings.temperature
        if self.settings.top_k > 0:
            k = min(self.settings.top_k, logits.shape[-1])
            kth = torch.topk(logits, k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.settings.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            # Drop a token once the mass before it already reaches top_p; the best one stays.
            drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= self.settings.top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(-1)
        chosen = torch.stack([torch.multinomial(probs[row], 1, generator=gen)
                              for row, gen in enumerate(self.generators)]).squeeze(-1)
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(scores.shape[0]), chosen.to(scores.device)] = 0.0
        return forced


class StopOnStrings:
    """A stopping criterion per row: stop once the row's decoded new text holds a stop string.

    It decodes exactly as the final answer is decoded, so it can never stop earlier than the
    cut in ``cut_at_stop`` (HF's token-level ``stop_strings`` can, on byte-level vocabularies).
    """

    def __init__(self, tokenizer: Any, until: Sequence[str], prompt_length: int) -> None:
        self.tokenizer, self.until, self.prompt_length = tokenizer, tuple(until), prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        done = [any(stop in text for stop in self.until) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def one_line(exc: BaseException) -> str:
    """The whole message on one line (some are wrapped mid-sentence)."""
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__


class Refused(Exception):
    """The processor or the model rejected an input (not a bug here); the message says why."""


def refusing(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call``, with its rejections of the input turned into ``Refused`` (out of memory stays)."""
    try:
        return call(*args, **kwargs)
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as exc:
        if is_oom(exc):
            raise
        raise Refused(f"{type(exc).__name__}: {one_line(exc)[:300]}") from exc


def run_split(run: Callable[[Sequence[T]], list[Any]], items: Sequence[T],
              out_of_memory: Callable[[T], Any],
              refused: Callable[[T, BaseException], Any]) -> list[Any]:
    """Run a batch; on failure split it, down to the items that fail alone.

    Out of memory halves the batch (a lone item that still fails goes to
    ``out_of_memory``). A processor or model that refuses an input (a ValueError and the
    like: too many images, an unsupported size) is found by bisection and only that item
    gets an error, with the reason, from ``refused``. Other errors (bugs in the adapter's
    own code) raise as they are.
    """
    try:
        return run(items)
    except (torch.OutOfMemoryError, RuntimeError, Refused) as exc:
        oom = is_oom(exc)
        if not oom and not isinstance(exc, Refused):
            raise
        if oom and torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(items) == 1:
            return [out_of_memory(items[0]) if oom else refused(items[0], exc)]
        half = len(items) // 2
        return (run_split(run, items[:half], out_of_memory, refused)
                + run_split(run, items[half:], out_of_memory, refused))
