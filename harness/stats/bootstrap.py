"""The percentile cluster bootstrap and repeat statistics: pure functions over arrays, no I/O.

Several questions share one image, so items are not independent: the bootstrap resamples
*clusters* (images), not items, through the one engine in ``harness.stats.clusters``. The
percentile bootstrap loses coverage with few images (docs/statistics.md); accuracies use
``harness.stats.intervals`` instead, and this one remains for statistics without a closed form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats.clusters import cluster_bootstrap_means


@dataclass(frozen=True)
class Estimate:
    """A proportion with its 95% bootstrap confidence interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


def cluster_bootstrap_ci(
    outcomes: Sequence[float],
    clusters: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of ``outcomes`` with a percentile bootstrap CI that resamples whole clusters.

    With ``clusters=None`` every outcome is its own cluster (the ordinary bootstrap).
    """
    values = np.asarray(outcomes, dtype=float)
    n = int(values.size)
    if n == 0:
        return Estimate(None, None, None, 0)
    labels = list(clusters) if clusters is not None else [str(i) for i in range(n)]
    if len(labels) != n:
        raise ValueError("outcomes and clusters differ in length")
    resampled = cluster_bootstrap_means(values, labels, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [alpha, 1.0 - alpha])
    return Estimate(float(values.mean()), float(low), float(high), n)


@dataclass(frozen=True)
class RepeatStats:
    """How a model does when each item is asked several times.

    - ``mean_accuracy``: accuracy of each repeat, averaged over the repeats that were run.
    - ``majority_accuracy``: accuracy after a majority vote per item; a tie scores 1/2.
    - ``consistency``: per item, the share of its repeats that agree with its most common
      outcome (1.0 = always the same), averaged over items.
    - ``fully_consistent``: share of items whose repeats all agree.
    """

    mean_accuracy: float | None
    majority_accuracy: float | None
    consistency: float | None
    fully_consistent: float | None
    n_items: int
    max_repeats: int


class RepeatTally:
    """:func:`repeat_stats` kept as running counts: per item and per repeat, how many scored
    outcomes and how many of them aligned, so samples can stream by."""

    def __init__(self) -> None:
        self.by_item: dict[str, list[int]] = {}  # item -> [aligned, scored]
        self.by_repeat: dict[int, list[int]] = {}

    def add(self, outcome: bool | None, item: str, repeat: int) -> None:
        if outcome is None:
            return
        for counts in (self.by_item.setdefault(str(item), [0, 0]),
                       self.by_repeat.setdefault(int(repeat), [0, 0])):
            counts[0] += bool(outcome)
            counts[1] += 1

    def stats(self) -> RepeatStats:
        if not self.by_item:
            return RepeatStats(None, None, None, None, 0, 0)
        repeat_accuracies = [aligned / n for aligned, n in self.by_repeat.values()]
        majority: list[float] = []
        agreement: list[float] = []
        for aligned, n in self.by_item.values():
            misaligned = n - aligned
            majority.append(1.0 if aligned > misaligned else 0.0 if aligned < misaligned else 0.5)
            agreement.append(max(aligned, misaligned) / n)
        return RepeatStats(
            mean_accuracy=float(np.mean(repeat_accuracies)),
            majority_accuracy=float(np.mean(majority)),
            consistency=float(np.mean(agreement)),
            fully_consistent=float(np.mean([a == 1.0 for a in agreement])),
            n_items=len(self.by_item),
            max_repeats=max(n for _, n in self.by_item.values()),
        )


def repeat_stats(
    outcomes: Sequence[bool | None],
    items: Sequence[str],
    repeats: Sequence[int],
) -> RepeatStats:
    """Repeat statistics over ``outcomes[i]`` for item ``items[i]`` at repeat ``repeats[i]``.

    ``None`` outcomes (refusals, unclear or failed verdicts) are left out: they are reported
    apart and never counted as right or wrong. An item with no scored repeat is left out.
    """
    if not len(outcomes) == len(items) == len(repeats):
        raise ValueError("outcomes, items and repeats differ in length")
    tally = RepeatTally()
    for outcome, item, repeat in zip(outcomes, items, repeats):
        tally.add(outcome, item, repeat)
    return tally.stats()
