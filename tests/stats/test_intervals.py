"""Intervals for clustered outcomes, against hand-computed values and their promises."""

from __future__ import annotations

import math

import pytest
from scipy.stats import t

from harness.stats.intervals import (
    RELIABLE_MIN_CLUSTERS,
    WILSON_DEFF,
    mean_ci,
    proportion_ci,
)


def wilson(successes: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_a_single_scored_item_is_never_a_zero_width_interval() -> None:
    right = proportion_ci([1.0], ["img"])
    wrong = proportion_ci([0.0], ["img"])
    assert (right.value, right.n, right.n_clusters, right.reliable) == (1.0, 1, 1, False)
    assert (right.ci_low, right.ci_high) == pytest.approx(wilson(1, 1))
    assert right.ci_low < 0.25 and right.ci_high == 1.0
    assert wrong.ci_low == 0.0 and wrong.ci_high > 0.75


def test_independent_items_give_the_plain_wilson_interval() -> None:
    outcomes = [1.0] * 7 + [0.0] * 13
    estimate = proportion_ci(outcomes)
    assert estimate.method == WILSON_DEFF and estimate.n_clusters == 20
    # Without clusters the design effect estimate is near 1 and n_eff is capped at n.
    low, high = wilson(7, 20)
    assert estimate.ci_low == pytest.approx(low, abs=0.02)
    assert estimate.ci_high == pytest.approx(high, abs=0.02)


def test_identical_answers_per_image_count_as_one_item_per_image() -> None:
    # 10 images x 4 questions, each image's answers alike: the effective n is 10, not 40.
    per_image = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]
    outcomes = [float(v) for v in per_image for _ in range(4)]
    images = [f"img{i}" for i in range(10) for _ in range(4)]
    clustered = proportion_ci(outcomes, images)
    assert (clustered.ci_low, clustered.ci_high) == pytest.approx(wilson(5, 10))
    naive = proportion_ci(outcomes)
    assert (naive.ci_high - naive.ci_low) < 0.7 * (clustered.ci_high - clustered.ci_low)


def test_all_right_takes_the_largest_design_effect() -> None:
    # 5 images x 3 items all right: no spread to estimate, so n_eff = 5 images, not 15 items.
    estimate = proportion_ci([1.0] * 15, [f"img{i // 3}" for i in range(15)])
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx(wilson(5, 5))
    assert estimate.reliable and RELIABLE_MIN_CLUSTERS == 5


def test_no_outcome_is_no_estimate() -> None:
    estimate = proportion_ci([], [])
    assert (estimate.value, estimate.ci_low, estimate.n, estimate.n_clusters) == (None, None, 0, 0)


def test_mean_ci_is_cluster_robust_t() -> None:
    # Per-image totals 2, 0, 1 over 2 items each: mean 0.5, CR1 variance by hand.
    values = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    clusters = ["a", "a", "b", "b", "c", "c"]
    estimate = mean_ci(values, clusters)
    variance = 3 / 2 * ((2 - 1) ** 2 + (0 - 1) ** 2 + (1 - 1) ** 2) / 36
    half = t.ppf(0.975, 2) * math.sqrt(variance)
    assert (estimate.value, estimate.n_clusters) == (0.5, 3)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((0.5 - half, 0.5 + half))
    assert mean_ci([1.0, 0.0], ["a", "a"]).ci_low is None  # one image: no spread to estimate


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError):
        proportion_ci([1.0, 0.0], ["a"])
