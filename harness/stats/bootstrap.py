"""Statistics over per-sample outcomes: pure functions over arrays, no I/O.

Several questions share one image, so items are not independent: confidence intervals
resample *clusters* (images), not items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
    _, cluster_index = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    n_clusters = int(cluster_index.max()) + 1
    sums = np.bincount(cluster_index, weights=values, minlength=n_clusters)
    counts = np.bincount(cluster_index, minlength=n_clusters).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    resampled = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled, [alpha, 1.0 - alpha])
    return Estimate(float(values.mean()), float(low), float(high), n)


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired binary outcomes.

    ``only_a`` counts pairs right under A and wrong under B; ``only_b`` the reverse.
    """

    only_a: int
    only_b: int
    n_pairs: int
    p_value: float


def mcnemar_exact(a_outcomes: Sequence[bool], b_outcomes: Sequence[bool]) -> McNemarResult:
    """Two-sided exact McNemar test: a binomial test of the discordant pairs against 1/2.

    Concordant pairs carry no information about which side is better, so only the
    discordant ones enter the test. With no discordant pair the p-value is 1.
    """
    a = np.asarray(a_outcomes, dtype=bool)
    b = np.asarray(b_outcomes, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("a_outcomes and b_outcomes differ in length")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemarResult(only_a, only_b, int(a.size), 1.0)
    from scipy.stats import binom

    # Binomial(discordant, 1/2) is symmetric, so the two-sided p-value doubles one tail.
    tail = float(binom.cdf(min(only_a, only_b), discordant, 0.5))
    return McNemarResult(only_a, only_b, int(a.size), min(1.0, 2.0 * tail))


def paired_bootstrap_diff(
    a_outcomes: Sequence[float],
    b_outcomes: Sequence[float],
    clusters: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of ``a - b`` over paired items, with a percentile CI resampling whole clusters.

    Pairs stay together in every resample (that is what makes it paired); clusters (the
    images) are drawn with replacement, since questions about one image are not independent.
    """
    a = np.asarray(a_outcomes, dtype=float)
    b = np.asarray(b_outcomes, dtype=float)
    if a.shape != b.shape:
        raise ValueError("a_outcomes and b_outcomes differ in length")
    return cluster_bootstrap_ci(a - b, clusters, n_resamples=n_resamples,
                                confidence=confidence, seed=seed)


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
    by_item: dict[str, list[bool]] = {}
    by_repeat: dict[int, list[bool]] = {}
    for outcome, item, repeat in zip(outcomes, items, repeats):
        if outcome is None:
            continue
        by_item.setdefault(str(item), []).append(bool(outcome))
        by_repeat.setdefault(int(repeat), []).append(bool(outcome))
    if not by_item:
        return RepeatStats(None, None, None, None, 0, 0)
    repeat_accuracies = [float(np.mean(v)) for v in by_repeat.values()]
    majority: list[float] = []
    agreement: list[float] = []
    for votes in by_item.values():
        aligned = sum(votes)
        misaligned = len(votes) - aligned
        majority.append(1.0 if aligned > misaligned else 0.0 if aligned < misaligned else 0.5)
        agreement.append(max(aligned, misaligned) / len(votes))
    return RepeatStats(
        mean_accuracy=float(np.mean(repeat_accuracies)),
        majority_accuracy=float(np.mean(majority)),
        consistency=float(np.mean(agreement)),
        fully_consistent=float(np.mean([a == 1.0 for a in agreement])),
        n_items=len(by_item),
        max_repeats=max(len(v) for v in by_item.values()),
    )


def cluster_resamples(clusters: Sequence[str], n_resamples: int, seed: int):
    """Row indices of ``n_resamples`` bootstrap samples that draw whole clusters.

    Each sample draws as many clusters as there are, with replacement, and yields the rows
    of every drawn cluster, so items that share an image move together.
    """
    _, cluster_index = np.unique(np.asarray(list(clusters), dtype=str), return_inverse=True)
    members = [np.flatnonzero(cluster_index == c) for c in range(int(cluster_index.max()) + 1)]
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(members), size=len(members))
        yield np.concatenate([members[c] for c in drawn])
