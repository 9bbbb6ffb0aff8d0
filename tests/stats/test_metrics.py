"""Statistics checked against hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from harness.stats.bootstrap import (
    cluster_bootstrap_ci,
    mcnemar_exact,
    paired_bootstrap_diff,
    repeat_stats,
)


def test_mcnemar_hand_computed() -> None:
    # 5 pairs only A right, 1 pair only B right, 4 concordant: p = 2 * (1 + 6) / 2**6.
    a = [True] * 5 + [False] * 1 + [True, True, False, False]
    b = [False] * 5 + [True] * 1 + [True, True, False, False]
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b, result.n_pairs) == (5, 1, 10)
    assert result.p_value == pytest.approx(14 / 64)


@pytest.mark.parametrize("only_a,only_b", [(0, 7), (3, 3), (9, 2), (12, 0), (1, 20)])
def test_mcnemar_matches_scipy_binomtest(only_a: int, only_b: int) -> None:
    a = [True] * only_a + [False] * only_b + [True] * 3
    b = [False] * only_a + [True] * only_b + [True] * 3
    expected = binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(a, b).p_value == pytest.approx(expected)


def test_mcnemar_no_discordant_pairs_is_one() -> None:
    assert mcnemar_exact([True, False], [True, False]).p_value == 1.0


def test_mcnemar_is_symmetric() -> None:
    a = [True, True, True, False, True]
    b = [False, False, True, True, False]
    assert mcnemar_exact(a, b).p_value == mcnemar_exact(b, a).p_value


def test_mcnemar_rejects_unequal_lengths() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_paired_diff_point_estimate_and_degenerate_ci() -> None:
    # Every pair differs by exactly +1: every resample gives +1.
    estimate = paired_bootstrap_diff([1, 1, 1, 1], [0, 0, 0, 0], ["x", "x", "y", "z"])
    assert (estimate.value, estimate.ci_low, estimate.ci_high, estimate.n) == (1.0, 1.0, 1.0, 4)


def test_paired_diff_is_paired_not_unpaired() -> None:
    # A and B differ on one item of 40: the paired CI is narrow around 1/40, far narrower
    # than two independent 50% proportions would give.
    rng = np.random.default_rng(1)
    b = rng.integers(0, 2, size=40).astype(float)
    a = b.copy()
    a[np.argmin(b)] = 1.0
    estimate = paired_bootstrap_diff(a, b, seed=3)
    assert estimate.value == pytest.approx(1 / 40)
    assert estimate.ci_low == 0.0
    assert estimate.ci_high <= 3 / 40


def test_clustered_ci_is_wider_when_items_share_an_image() -> None:
    # 10 images x 4 questions with identical answers per image: 10 effective samples, not 40.
    per_image = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]
    outcomes = [v for v in per_image for _ in range(4)]
    images = [f"img{i}" for i in range(10) for _ in range(4)]
    clustered = cluster_bootstrap_ci(outcomes, images, seed=0)
    naive = cluster_bootstrap_ci(outcomes, seed=0)
    assert clustered.value == naive.value == 0.5
    assert (clustered.ci_high - clustered.ci_low) > 1.5 * (naive.ci_high - naive.ci_low)


def test_paired_diff_clustering_resamples_whole_images() -> None:
    # One image holds every difference: a resample either has it or not, so the CI's
    # endpoints are sums over whole images (multiples of the image's 3 items).
    a = [1, 1, 1, 0, 0, 0]
    b = [0, 0, 0, 0, 0, 0]
    estimate = paired_bootstrap_diff(a, b, ["i1", "i1", "i1", "i2", "i2", "i2"], seed=0)
    assert estimate.value == 0.5
    assert estimate.ci_low == 0.0 and estimate.ci_high == 1.0


def test_repeat_stats_hand_computed() -> None:
    # item a: T T F   (majority T, agreement 2/3)
    # item b: F F F   (majority F, agreement 1)
    # item c: T F     (tie: 1/2, agreement 1/2; its third repeat was a refusal)
    items = ["a", "a", "a", "b", "b", "b", "c", "c", "c"]
    repeats = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    outcomes = [True, True, False, False, False, False, True, False, None]
    stats = repeat_stats(outcomes, items, repeats)
    # repeat 0: T F T = 2/3; repeat 1: T F F = 1/3; repeat 2: F F = 0.
    assert stats.mean_accuracy == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert stats.majority_accuracy == pytest.approx((1 + 0 + 0.5) / 3)
    assert stats.consistency == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert stats.fully_consistent == pytest.approx(1 / 3)
    assert (stats.n_items, stats.max_repeats) == (3, 3)


def test_repeat_stats_single_repeat_is_plain_accuracy() -> None:
    stats = repeat_stats([True, False, True, True], ["a", "b", "c", "d"], [0, 0, 0, 0])
    assert stats.mean_accuracy == stats.majority_accuracy == 0.75
    assert stats.consistency == stats.fully_consistent == 1.0


def test_repeat_stats_nothing_scored() -> None:
    stats = repeat_stats([None, None], ["a", "b"], [0, 0])
    assert stats.mean_accuracy is None and stats.majority_accuracy is None
    assert (stats.n_items, stats.max_repeats) == (0, 0)


def test_cluster_stderr_is_lm_evals_mean_stderr_without_clusters_and_wider_with_them() -> None:
    import numpy as np

    from harness.stats.stderr import cluster_stderr

    outcomes = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    plain = cluster_stderr(outcomes)
    assert plain == pytest.approx(np.std(outcomes, ddof=1) / np.sqrt(len(outcomes)))
    # Items sharing an image move together: fewer independent units, a wider error.
    assert cluster_stderr(outcomes, ["a", "b", "a", "a", "b", "a"]) > plain
    assert cluster_stderr([1.0, 0.0], ["a", "a"]) is None and cluster_stderr([]) is None
