"""Paired tests clustered by image, against hand-computed values, scipy and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binomtest

from harness.stats.paired import (
    MCNEMAR,
    SIGN_FLIP_EXACT,
    SIGN_FLIP_MONTE_CARLO,
    clustered_paired_test,
    holm,
    mcnemar_exact,
    sign_flip_test,
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


def test_sign_flip_matches_brute_force() -> None:
    d = np.array([0.5, -1 / 3, 1.0, 0.25, 2 / 3, 0.0, 1.0])
    nonzero = d[d != 0]
    sums = [abs(sum(s * x for s, x in zip(signs, nonzero)))
            for signs in itertools.product((-1, 1), repeat=nonzero.size)]
    observed = abs(nonzero.sum())
    greater = sum(1 for v in sums if v > observed + 1e-12)
    equal = sum(1 for v in sums if abs(v - observed) <= 1e-12)
    result = sign_flip_test(d)
    assert result.exact and result.n_nonzero == 6
    assert result.p_exact == pytest.approx((greater + equal) / 64)
    assert result.p_value == pytest.approx((greater + equal / 2) / 64)
    assert result.min_p == pytest.approx(2 / 64)


def test_monte_carlo_is_seeded_and_close_to_exact() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0.2, 1.0, size=16)
    exact = sign_flip_test(d)
    drawn = sign_flip_test(d, exact_max=10, n_permutations=20_000, seed=3)
    assert not drawn.exact and drawn == sign_flip_test(d, exact_max=10, n_permutations=20_000,
                                                       seed=3)
    assert drawn.p_exact == pytest.approx(exact.p_exact, abs=0.01)
    assert drawn.p_value > 0


def test_one_item_per_image_is_mcnemar() -> None:
    # 5 pairs only A right, 1 only B right, 4 concordant, every pair on its own image.
    a = [True] * 5 + [False] + [True, True, False, False]
    b = [False] * 5 + [True] + [True, True, False, False]
    test = clustered_paired_test(a, b, [f"img{i}" for i in range(10)])
    assert test.method == MCNEMAR
    assert test.p_exact == pytest.approx(mcnemar_exact(a, b).p_value)
    # mid-p: P(X < 1) + P(X = 1) / 2, doubled, for X ~ Binomial(6, 1/2).
    assert test.p_value == pytest.approx(2 * (1 + 6 / 2) / 64)


def test_an_image_counts_once_however_many_items_ask_it() -> None:
    # Image x: A beats B on 30 items (10 questions at 3 shot counts); image y: B beats A once.
    # Counted per item this is overwhelming; per image it is one image against another.
    a = [True] * 30 + [False]
    b = [False] * 30 + [True]
    test = clustered_paired_test(a, b, ["x"] * 30 + ["y"])
    assert (test.method, test.n_clusters, test.n_pairs) == (SIGN_FLIP_EXACT, 2, 31)
    assert test.p_exact == 1.0 and test.min_p == 0.5
    assert mcnemar_exact(a, b).p_value < 1e-7


def test_identical_runs_have_p_one() -> None:
    test = clustered_paired_test([True, False, True], [True, False, True], ["a", "a", "b"])
    assert test.p_value == test.p_exact == 1.0 and test.n_clusters_differing == 0


def test_many_images_fall_back_to_a_seeded_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(120) < 0.7
    b = rng.random(120) < 0.5
    clusters = [f"img{i // 2}" for i in range(120)]
    test = clustered_paired_test(a, b, clusters, exact_max=12, n_permutations=2000, seed=1)
    assert test.method == SIGN_FLIP_MONTE_CARLO and test.seed == 1 and test.n_clusters == 60
    assert 1 / 2001 <= test.p_value < 0.05


def test_holm_hand_computed() -> None:
    # Sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04).
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_thousands_of_images_do_not_overflow() -> None:
    differences = np.ones(1500)
    result = sign_flip_test(differences, n_permutations=200, seed=0)
    assert result.min_p == 0.0 and result.p_exact == pytest.approx(1 / 201)
