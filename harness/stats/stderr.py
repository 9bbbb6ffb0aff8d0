"""The standard error of a mean whose observations come in clusters (items sharing an image).

The cluster-robust (CR1, sandwich) estimate, the same variance ``harness.stats.intervals``
builds its intervals on: with every observation its own cluster it is the sample standard
deviation over sqrt(n), lm-eval's ``mean_stderr``. Pure function over arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.stats.intervals import _cluster_totals, _cr1_variance


def cluster_stderr(outcomes: Sequence[float], clusters: Sequence[str] | None = None) -> float | None:
    """Standard error of ``mean(outcomes)``, clustered by ``clusters``; None below 2 clusters."""
    return cluster_stderr_of_totals(*_cluster_totals(outcomes, clusters))


def cluster_stderr_of_totals(totals: np.ndarray, sizes: np.ndarray) -> float | None:
    """:func:`cluster_stderr` from each cluster's sum and count (clusters in name order)."""
    n = float(sizes.sum())
    if n == 0 or sizes.size < 2:
        return None
    return float(np.sqrt(_cr1_variance(totals, sizes, float(totals.sum() / n))))
