"""Pass 2 of a run: fill the journal with a response for every instance.

Requests go to the model in batches (of a fixed size, or ``auto``: halving on out-of-memory),
each response journaled (and cached) as it comes back; resumed and cached responses are not
asked again. It renders no prompt and judges nothing.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.models.base import Model
from harness.models.contexts import loglikelihood_by_context
from harness.run.journal import Journal, ResponseCache, request_key
from harness.tasks.ablation import NO_ABLATION
from harness.tasks.task import Instance
from harness.types import Request, Response

#: The model call each output type needs.
CALL_KINDS = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
              "loglikelihood_rolling": "loglikelihood_rolling", "generate_until": "generate"}


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(file=sys.stderr), disable=not enabled,
                    transient=False)


#: Where ``--batch-size auto`` starts; it halves on out-of-memory until a batch fits.
AUTO_BATCH_START = 64


def is_out_of_memory(exc: BaseException) -> bool:
    """An accelerator or host out-of-memory error, without importing torch."""
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in str(exc).lower())


class _Sizing:
    """The batch size in use: fixed, or (``auto``) halving on out-of-memory."""

    def __init__(self, batch_size: int | str) -> None:
        self.auto = batch_size == "auto"
        self.size = AUTO_BATCH_START if self.auto else int(batch_size)
        #: The largest batch that went through (None: nothing asked).
        self.used: int | None = None


def generate_all(model: Model, instances: Iterable[Instance], journal: Journal,
              cache: ResponseCache | None, batch_size: int | str, progress: bool,
              kinds: Mapping[str, str], totals: Mapping[str, int],
              image_ablation: str = NO_ABLATION) -> int | None:
    """Fill the journal with a response for every instance (resumed, cached, or generated).

    Instances stream by; each kind's requests wait in a buffer of one batch, so the batches
    are those of the instances in order, whatever else is resumed or cached. With
    ``batch_size == "auto"`` batches start at ``AUTO_BATCH_START`` and halve on out-of-memory
    until one fits; returns the batch size used last (None: nothing asked).
    """
    sizing = _Sizing(batch_size)
    pending: dict[str, list[tuple[Instance, str]]] = {kind: [] for kind in totals}
    with _progress(progress) as bar:
        jobs = {kind: bar.add_task(f"{model.registry_name}: {kind}", total=total)
                for kind, total in totals.items() if total}
        for instance in instances:
            kind = kinds[instance.task]
            if journal.done(instance.key):
                bar.advance(jobs[kind])
                continue
            key = request_key(instance.request, kind, image_ablation)
            hit = cache.get(key, instance.key) if cache is not None else None
            if hit is not None:
                journal.add(hit, cached=True)
                bar.advance(jobs[kind])
                continue
            pending[kind].append((instance, key))
            if len(pending[kind]) >= sizing.size:
                _call(model, kind, pending[kind], journal, cache, sizing)
                bar.advance(jobs[kind], len(pending[kind]))
                pending[kind] = []
        for kind, chunk in pending.items():
            if chunk:
                _call(model, kind, chunk, journal, cache, sizing)
                bar.advance(jobs[kind], len(chunk))
    return sizing.used


def _call(model: Model, kind: str, chunk: Sequence[tuple[Instance, str]], journal: Journal,
          cache: ResponseCache | None, sizing: _Sizing) -> None:
    """One batch to the model (smaller ones on out-of-memory when the size is ``auto``);
    each response journaled (and cached) as it comes back."""
    calls: dict[str, Callable[[Sequence[Request]], list[Response]]] = {
        "generate": model.generate,
        "loglikelihood": functools.partial(loglikelihood_by_context, model.loglikelihood),
        "loglikelihood_rolling": model.loglikelihood_rolling}
    call = calls[kind]
    start = 0
    while start < len(chunk):
        part = chunk[start:start + sizing.size] if sizing.auto else chunk[start:]
        requests: list[Request] = [item.request for item, _ in part]
        try:
            responses: list[Response] = call(requests)
        except Exception as exc:
            if sizing.auto and len(part) > 1 and is_out_of_memory(exc):
                sizing.size = len(part) // 2  # answers never depend on the batch: retry smaller
                continue
            raise
        if len(responses) != len(requests):
            raise RuntimeError(f"model {model.registry_name} returned {len(responses)} "
                               f"responses for {len(requests)} requests")
        for (item, key), response in zip(part, responses):
            if response.request_id != item.key:
                response = replace(response, request_id=item.key)
            journal.add(response)
            if cache is not None:
                cache.put(key, response)
        start += len(part)
        sizing.used = len(part) if sizing.used is None else max(sizing.used, len(part))
