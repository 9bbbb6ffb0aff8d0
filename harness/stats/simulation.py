"""Synthetic clustered data to check the statistics themselves: pure functions, no I/O.

Each data set has ``n_images`` images with ``items_per_image`` questions each. Image ``g`` has
a random effect ``u_g ~ N(0, sigma)`` on the logit scale, shared by both models; each model
adds its own image effect ``w ~ N(0, tau)``, so A and B are equally good but not identical
(a true null for the paired test). An item is right with probability
``expit(mu + u_g + w_g)``. The true accuracy is the population mean
``E[expit(mu + sqrt(sigma^2 + tau^2) Z)]``. Used by tests/stats/test_simulation.py (fast) and
benchmarks/stats_simulation.py (the full grid in docs/statistics.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.stats.bootstrap import cluster_bootstrap_ci
from harness.stats.intervals import proportion_ci
from harness.stats.paired import clustered_paired_test, mcnemar_exact

#: The mixed design: per data set, mu ~ U(MU_RANGE) (true accuracies ~0.3-0.93) and
#: sigma ~ U(SIGMA_RANGE); tau fixed.
MU_RANGE = (-1.0, 3.0)
SIGMA_RANGE = (0.5, 1.5)
TAU = 1.0


@lru_cache(maxsize=1)
def _quadrature() -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return nodes, weights


def true_accuracy(mu: float, sigma: float) -> float:
    """E[expit(mu + sigma Z)], Z standard normal, by Gauss-Hermite quadrature."""
    nodes, weights = _quadrature()
    return float((weights / (1.0 + np.exp(-(mu + sigma * nodes)))).sum() / weights.sum())


@dataclass(frozen=True)
class Dataset:
    a: np.ndarray  # 0/1 outcomes of model A, one per item
    b: np.ndarray
    clusters: list[str]
    truth: float  # A's (and B's) true accuracy


def simulate(rng: np.random.Generator, n_images: int, items_per_image: int | tuple[int, int],
             mu: float, sigma: float, tau: float = TAU) -> Dataset:
    """One data set; ``items_per_image`` is a count, or a (low, high) range drawn per image."""
    shared = rng.normal(0.0, sigma, n_images)
    logits_a = mu + shared + rng.normal(0.0, tau, n_images)
    logits_b = mu + shared + rng.normal(0.0, tau, n_images)
    if isinstance(items_per_image, tuple):
        sizes = rng.integers(items_per_image[0], items_per_image[1] + 1, n_images)
    else:
        sizes = np.full(n_images, items_per_image)
    p_a = np.repeat(1.0 / (1.0 + np.exp(-logits_a)), sizes)
    p_b = np.repeat(1.0 / (1.0 + np.exp(-logits_b)), sizes)
    a = (rng.random(p_a.size) < p_a).astype(float)
    b = (rng.random(p_b.size) < p_b).astype(float)
    clusters = [f"img{g}" for g, size in enumerate(sizes) for _ in range(size)]
    return Dataset(a, b, clusters, true_accuracy(mu, float(np.hypot(sigma, tau))))


@dataclass(frozen=True)
class Operating:
    """How often, over ``n_datasets``, the 95% interval covered the truth and the 5% tests
    rejected the true null; ``*_old`` are main's former methods (percentile bootstrap,
    McNemar on items) for comparison."""

    n_images: int
    items_per_image: int | tuple[int, int]
    n_datasets: int
    coverage: float
    rejection: float
    coverage_old: float | None = None
    rejection_old: float | None = None


def operating_characteristics(n_images: int, items_per_image: int | tuple[int, int],
                              n_datasets: int, seed: int,
                              *, mu: float | None = None, sigma: float | None = None,
                              n_permutations: int = 2000, with_old: bool = False,
                              alpha: float = 0.05) -> Operating:
    """Coverage and type-I error on ``n_datasets`` simulated data sets (the mixed design unless
    ``mu`` and ``sigma`` are given)."""
    rng = np.random.default_rng(seed)
    covered = rejected = covered_old = rejected_old = 0
    for index in range(n_datasets):
        mu_d = rng.uniform(*MU_RANGE) if mu is None else mu
        sigma_d = rng.uniform(*SIGMA_RANGE) if sigma is None else sigma
        data = simulate(rng, n_images, items_per_image, mu_d, sigma_d)
        interval = proportion_ci(data.a.tolist(), data.clusters)
        assert interval.ci_low is not None and interval.ci_high is not None
        covered += interval.ci_low <= data.truth <= interval.ci_high
        test = clustered_paired_test(data.a == 1, data.b == 1, data.clusters,
                                     n_permutations=n_permutations, seed=index)
        rejected += test.p_value < alpha
        if with_old:
            old = cluster_bootstrap_ci(data.a.tolist(), data.clusters, seed=index)
            assert old.ci_low is not None and old.ci_high is not None
            covered_old += old.ci_low <= data.truth <= old.ci_high
            rejected_old += mcnemar_exact(data.a == 1, data.b == 1).p_value < alpha
    return Operating(n_images, items_per_image, n_datasets, covered / n_datasets,
                     rejected / n_datasets,
                     covered_old / n_datasets if with_old else None,
                     rejected_old / n_datasets if with_old else None)
