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
