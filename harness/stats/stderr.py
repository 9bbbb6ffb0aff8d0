"""The standard error of a mean whose observations come in clusters (items sharing an image).

The cluster-robust (sandwich) estimate: with every observation its own cluster it is the
sample standard deviation over sqrt(n), lm-eval's ``mean_stderr``. Pure function over arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def cluster_stderr(outcomes: Sequence[float], clusters: Sequence[str] | None = None) -> float | None:
    """Standard error of ``mean(outcomes)``, clustered by ``clusters``; None below 2 clusters."""
    values = np.asarray(outcomes, dtype=float)
    n = int(values.size)
    labels = list(clusters) if clusters is not None else [str(i) for i in range(n)]
    if len(labels) != n:
        raise ValueError("outcomes and clusters differ in length")
    if n == 0:
        return None
    _, index = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    n_clusters = int(index.max()) + 1
    if n_clusters < 2:
        return None
    residual_sums = np.bincount(index, weights=values - values.mean(), minlength=n_clusters)
    variance = n_clusters / (n_clusters - 1) * float(np.sum(residual_sums ** 2)) / n ** 2
    return float(np.sqrt(variance))
