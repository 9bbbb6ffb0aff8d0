"""The cluster bootstrap, the cluster rule and repeat statistics, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats.bootstrap import cluster_bootstrap_ci, repeat_stats
from harness.stats.clusters import cluster_bootstrap_means, cluster_resamples, image_cluster


def test_clustered_ci_is_wider_when_items_share_an_image() -> None:
    # 10 images x 4 questions with identical answers per image: 10 effective samples, not 40.
    per_image = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]
    outcomes = [v for v in per_image for _ in range(4)]
    images = [f"img{i}" for i in range(10) for _ in range(4)]
    clustered = cluster_bootstrap_ci(outcomes, images, seed=0)
    naive = cluster_bootstrap_ci(outcomes, seed=0)
    assert clustered.value == naive.value == 0.5
    assert (clustered.ci_high - clustered.ci_low) > 1.5 * (naive.ci_high - naive.ci_low)


def test_one_engine_draws_the_clusters_of_every_bootstrap() -> None:
    # The fast per-cluster means and the row resamples kappa uses come from the same draws.
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    clusters = ["a", "a", "b", "c", "c", "d", "e"]
    means = cluster_bootstrap_means(values, clusters, 50, seed=4)
    rows = list(cluster_resamples(clusters, 50, seed=4))
    assert np.allclose(means, [np.mean(np.asarray(values)[r]) for r in rows])


def test_image_cluster_is_the_first_own_image() -> None:
    assert image_cluster(["img-a", "img-b"], "d") == "img-a"
    # A text-only document is one cluster across the tasks that ask it.
    assert image_cluster([], "d") == image_cluster(None, "d") == "doc:d"


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
