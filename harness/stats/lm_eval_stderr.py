"""lm-eval's standard errors, draw for draw: ``mean_stderr`` and ``bootstrap_stderr``.

lm-evaluation-harness 0.4 (``lm_eval.api.metrics``) gives a mean's standard error in closed
form (the sample standard deviation over sqrt(n)) and bootstraps other aggregations: chunks of
``min(1000, iters)`` resamples, chunk ``i`` drawn by ``random.Random(i).choices(items,
k=len(items))``, for ``iters // chunk`` chunks (a remainder is dropped); the standard error is
the sample standard deviation of the replicates, summed in draw order.

Here the same resamples are drawn as index arrays a statistic evaluates in bulk: the Mersenne
Twister state of ``random.Random(i)`` is handed to numpy, whose doubles are the ones
``random()`` returns, and turned into indices as ``choices`` does (``floor(random() * n)``).
Pure functions over arrays; nothing here knows a metric.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

#: lm-eval's default number of bootstrap iterations (``simple_evaluate`` and its CLI).
BOOTSTRAP_ITERS = 100_000
#: Resamples per seeded chunk (lm-eval's ``chunk_size``).
CHUNK = 1000
#: Indices held at once: a chunk is drawn in blocks of rows below this many.
BLOCK_INDICES = 1 << 22


def sample_stddev(values: Sequence[float]) -> float:
    """lm-eval's ``sample_stddev``: Bessel-corrected, summed left to right as Python does."""
    mu = sum(values) / len(values)
    return math.sqrt(sum([(x - mu) ** 2 for x in values]) / (len(values) - 1))


def mean_stderr(values: Sequence[float]) -> float:
    """lm-eval's ``mean_stderr``: ``sample_stddev(values) / sqrt(n)``."""
    return sample_stddev(values) / math.sqrt(len(values))


def _generator(seed: int) -> np.random.RandomState:
    """A numpy generator in the state of ``random.Random(seed)`` (same doubles, same order)."""
    state = random.Random(seed).getstate()[1]
    generator = np.random.RandomState()
    generator.set_state(("MT19937", np.array(state[:624], dtype=np.uint32), int(state[624]), 0, 0.0))
    return generator


def bootstrap_indices(n: int, iters: int) -> Iterator[np.ndarray]:
    """lm-eval's resamples of ``n`` items, in its order, as (rows, n) index arrays."""
    chunk = min(CHUNK, iters)
    rows_per_block = max(1, min(chunk, BLOCK_INDICES // max(n, 1)))
    for seed in range(iters // chunk):
        generator = _generator(seed)
        for start in range(0, chunk, rows_per_block):
            rows = min(rows_per_block, chunk - start)
            yield np.floor(generator.random_sample((rows, n)) * float(n)).astype(np.intp)


def bootstrap_stderr(statistic: Callable[[np.ndarray], Iterable[float]], n: int,
                     iters: int) -> float | None:
    """lm-eval's ``bootstrap_stderr``: ``statistic`` maps a block of resamples (rows of
    indices into the ``n`` items) to one replicate per row. None below two replicates."""
    replicates: list[float] = []
    for block in bootstrap_indices(n, iters):
        replicates.extend(float(value) for value in statistic(block))
    return sample_stddev(replicates) if len(replicates) > 1 else None
