"""Confidence intervals for clustered outcomes that keep their level with few images.

Pure functions over arrays, no I/O. Two intervals, both chosen by simulation
(benchmarks/stats_simulation.py; figures and references in docs/statistics.md):

- :func:`proportion_ci`, for an accuracy (a share of 0/1 outcomes): the Wilson score interval
  on the *effective* sample size ``n / deff``, the design effect ``deff`` estimated from the
  cluster-robust (CR1) variance and held to what clustering can do, ``[1, n^2 / sum n_g^2]``
  (independent items .. every item of an image alike). When every outcome is 0 or every one
  is 1 the variance says nothing and the interval takes the largest design effect. It is never
  zero-width: a single scored item gives Wilson's interval for one trial.
- :func:`mean_ci`, for a mean of differences (paired A - B, judge - human): the cluster-robust
  (CR1) standard error with Student's t on ``k - 1`` degrees of freedom, the usual few-cluster
  correction (Cameron & Miller 2015).

Below :data:`RELIABLE_MIN_CLUSTERS` images an interval is marked unreliable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from harness.stats.clusters import cluster_codes

#: Fewer images than this and an interval is flagged "unreliable": with 2-4 images the
#: simulated coverage swings between 91% and 99% with the design (docs/statistics.md).
RELIABLE_MIN_CLUSTERS = 5
WILSON_DEFF = "wilson-deff"
CLUSTER_T = "cluster-t"


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval over ``n`` outcomes on ``n_clusters`` images.

    ``value`` and the bounds are None when there is nothing to estimate (no outcome).
    ``reliable`` is False below :data:`RELIABLE_MIN_CLUSTERS` images.
    """

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_clusters: int
    method: str

    @property
    def reliable(self) -> bool:
        return self.n_clusters >= RELIABLE_MIN_CLUSTERS


def _normal_quantile(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _cluster_totals(values: Sequence[float], clusters: Sequence[str] | None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums of ``values`` and per-cluster counts."""
    data = np.asarray(values, dtype=float)
    labels = list(clusters) if clusters is not None else [str(i) for i in range(data.size)]
    if len(labels) != data.size:
        raise ValueError("outcomes and clusters differ in length")
    codes, k = cluster_codes(labels)
    return (np.bincount(codes, weights=data, minlength=k),
            np.bincount(codes, minlength=k).astype(float))


def _cr1_variance(totals: np.ndarray, sizes: np.ndarray, mean: float) -> float:
    """Cluster-robust variance of the ratio mean sum(y) / sum(n), with the k/(k-1) factor."""
    k = totals.size
    n = sizes.sum()
    return float(k / (k - 1) * ((totals - mean * sizes) ** 2).sum() / n**2)


def proportion_ci(outcomes: Sequence[float], clusters: Sequence[str] | None = None, *,
                  confidence: float = 0.95) -> Interval:
    """The share of ``outcomes`` (0/1) with a design-effect Wilson interval (module docstring).

    With ``clusters=None`` every outcome is its own cluster (the plain Wilson interval).
    """
    return proportion_ci_of_totals(*_cluster_totals(outcomes, clusters), confidence=confidence)


def proportion_ci_of_totals(totals: np.ndarray, sizes: np.ndarray, *,
                            confidence: float = 0.95) -> Interval:
    """:func:`proportion_ci` from each cluster's sum of outcomes and count (clusters in name
    order), so a run can keep running sums instead of every outcome."""
    n, k = int(sizes.sum()), int(sizes.size)
    if n == 0:
        return Interval(None, None, None, 0, 0, WILSON_DEFF)
    p = float(totals.sum() / n)
    fewest = float(n**2 / (sizes**2).sum())  # Kish's effective n when an image's items are alike
    variance = _cr1_variance(totals, sizes, p) if k > 1 else 0.0
    if 0.0 < p < 1.0 and variance > 0.0:
        n_eff = min(max(p * (1.0 - p) / variance, fewest), float(n))
    else:
        n_eff = fewest
    z = _normal_quantile(confidence)
    shrink = 1.0 + z * z / n_eff
    centre = (p + z * z / (2.0 * n_eff)) / shrink
    half = z * np.sqrt(p * (1.0 - p) / n_eff + z * z / (4.0 * n_eff**2)) / shrink
    return Interval(p, max(0.0, float(centre - half)), min(1.0, float(centre + half)), n, k,
                    WILSON_DEFF)


def mean_ci(values: Sequence[float], clusters: Sequence[str] | None = None, *,
            confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with a cluster-robust t interval on ``k - 1`` degrees of freedom.

    With one cluster there is no spread to estimate and the bounds are None.
    """
    return mean_ci_of_totals(*_cluster_totals(values, clusters), confidence=confidence)


def mean_ci_of_totals(totals: np.ndarray, sizes: np.ndarray, *,
                      confidence: float = 0.95) -> Interval:
    """:func:`mean_ci` from each cluster's sum of values and count (clusters in name order)."""
    from scipy.stats import t

    n, k = int(sizes.sum()), int(sizes.size)
    if n == 0:
        return Interval(None, None, None, 0, 0, CLUSTER_T)
    mean = float(totals.sum() / n)
    if k < 2:
        return Interval(mean, None, None, n, k, CLUSTER_T)
    half = float(t.ppf(0.5 + confidence / 2.0, k - 1)) * np.sqrt(_cr1_variance(totals, sizes, mean))
    return Interval(mean, mean - half, mean + half, n, k, CLUSTER_T)
