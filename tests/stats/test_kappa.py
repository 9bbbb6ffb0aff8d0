"""Agreement statistics against hand-computed and textbook values."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from harness.stats.kappa import (
    cluster_bootstrap_alpha,
    cluster_bootstrap_fleiss,
    cluster_bootstrap_kappa,
    cohen_kappa,
    confusion_matrix,
    fleiss_kappa,
    fleiss_table,
    krippendorff_alpha,
)


def _pairs(counts: dict[tuple[str, str], int]) -> tuple[list[str], list[str]]:
    a: list[str] = []
    b: list[str] = []
    for (x, y), n in counts.items():
        a += [x] * n
        b += [y] * n
    return a, b


def test_cohen_textbook_two_by_two() -> None:
    # 50 proposals read by two readers: po = 0.7, pe = 0.5*0.6 + 0.5*0.4 = 0.5, kappa = 0.4.
    a, b = _pairs({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_three_categories_by_hand() -> None:
    # po = 4/6; marginals A = (2,2,2)/6, B = (2,3,1)/6 -> pe = 1/3; kappa = (2/3-1/3)/(2/3).
    a = ["x", "x", "y", "y", "z", "z"]
    b = ["x", "y", "y", "y", "z", "x"]
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa(b, a) == pytest.approx(0.5)


def test_cohen_perfect_and_undefined() -> None:
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_confusion_matrix_rows_are_first_rater() -> None:
    matrix = confusion_matrix(["x", "x", "y", "y"], ["x", "y", "y", "y"], ["x", "y", "z"])
    assert matrix == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_fleiss_textbook_example() -> None:
    # Fleiss (1971)-style worked example: 10 subjects, 14 raters, 5 categories.
    counts = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    # P-bar = 0.378, P-e = 0.2128 (hand computed) -> kappa = 0.2099.
    assert fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-4)


def test_fleiss_by_hand_and_via_table() -> None:
    # Items [a,a], [b,b], [a,b]: P_i = 1, 1, 0 -> P-bar = 2/3; shares .5/.5 -> pe = .5.
    table, categories = fleiss_table([["a", "a"], ["b", "b"], ["a", "b"]])
    assert categories == ["a", "b"]
    assert table == [[2, 0], [0, 2], [1, 1]]
    assert fleiss_kappa(table) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])
    assert fleiss_kappa([[3, 0], [3, 0]]) is None


def test_bootstrap_resamples_clusters_not_items() -> None:
    a = ["y", "y", "n", "n", "y", "n", "y", "n", "y", "y"]
    b = ["y", "n", "n", "n", "y", "y", "y", "n", "n", "y"]
    plain = cluster_bootstrap_kappa(a, b, n_resamples=300, seed=3)
    # Three copies of each item, clustered by item: the same clusters are drawn with the
    # same seed and each draw has the same proportions, so the CI must be identical.
    tripled = cluster_bootstrap_kappa(
        [x for x in a for _ in range(3)], [y for y in b for _ in range(3)],
        clusters=[str(i) for i in range(len(a)) for _ in range(3)], n_resamples=300, seed=3)
    assert tripled.value == pytest.approx(plain.value)
    assert (tripled.ci_low, tripled.ci_high) == pytest.approx((plain.ci_low, plain.ci_high))
    assert tripled.n == 30
    # Ignoring the clusters treats the copies as independent and narrows the interval.
    naive = cluster_bootstrap_kappa([x for x in a for _ in range(3)],
                                    [y for y in b for _ in range(3)], n_resamples=300, seed=3)
    assert naive.ci_high - naive.ci_low < plain.ci_high - plain.ci_low
    assert plain.ci_low <= plain.value <= plain.ci_high


def test_fleiss_bootstrap_brackets_the_estimate_and_honours_clusters() -> None:
    table = [[3, 0], [2, 1], [0, 3], [1, 2], [3, 0], [0, 3], [2, 1], [1, 2]]
    plain = cluster_bootstrap_fleiss(table, n_resamples=300, seed=1)
    assert plain.value == pytest.approx(fleiss_kappa(table))
    assert plain.ci_low <= plain.value <= plain.ci_high and plain.n == 8
    doubled = cluster_bootstrap_fleiss([row for row in table for _ in range(2)],
                                       [str(i) for i in range(8) for _ in range(2)],
                                       n_resamples=300, seed=1)
    assert (doubled.ci_low, doubled.ci_high) == pytest.approx((plain.ci_low, plain.ci_high))
    assert cluster_bootstrap_fleiss([]).value is None


def test_fleiss_takes_items_with_different_numbers_of_raters() -> None:
    # [a,a,a]: P=1; [a,b]: P=0; [b,b]: P=1 -> P-bar 2/3; shares a 4/7, b 3/7 -> pe = 25/49.
    table, _ = fleiss_table([["a", "a", "a"], ["a", "b"], ["b", "b"]])
    pe = 25 / 49
    assert fleiss_kappa(table) == pytest.approx((2 / 3 - pe) / (1 - pe))


def _reliability(rows: list[list[str | None]], categories: list[str]) -> tuple[np.ndarray, list[list[int]]]:
    """The same labels as the package's raters x items matrix and as our items x counts table."""
    matrix = np.array([[np.nan if x is None else categories.index(x) for x in row]
                       for row in rows], dtype=float)
    counts = [[sum(1 for row in rows if row[u] == c) for c in categories]
              for u in range(len(rows[0]))]
    return matrix, counts


def _random_labels(seed: int, raters: int, items: int, missing: float) -> list[list[str | None]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, items)
    rows: list[list[str | None]] = []
    for _ in range(raters):
        agree = rng.random(items) < 0.6
        labels = np.where(agree, truth, rng.integers(0, 3, items))
        rows.append([None if rng.random() < missing else "abc"[v] for v in labels])
    return rows


KRIPPENDORFF_DATASETS = {
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example:
    # 4 observers, 12 units, missing values; published alpha = 0.743.
    "krippendorff-2011": [
        ["a", "b", "c", "c", "b", "a", "d", "a", "b", None, None, None],
        ["a", "b", "c", "c", "b", "b", "d", "a", "b", "e", None, "c"],
        [None, "c", "c", "c", "b", "c", "d", "b", "b", "e", "a", None],
        ["a", "b", "c", "c", "b", "d", "d", "a", "b", "e", "a", None],
    ],
    "complete-two-raters": [["a", "a", "b", "b", "a", "c", "c", "a"],
                            ["a", "b", "b", "b", "a", "c", "a", "a"]],
    "random-5-raters-30pct-missing": _random_labels(1, 5, 60, 0.3),
    "random-3-raters-complete": _random_labels(2, 3, 40, 0.0),
}


@pytest.mark.parametrize("name", sorted(KRIPPENDORFF_DATASETS))
def test_krippendorff_alpha_matches_the_package(name: str) -> None:
    rows = KRIPPENDORFF_DATASETS[name]
    categories = sorted({x for row in rows for x in row if x is not None})
    matrix, counts = _reliability(rows, categories)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert krippendorff_alpha(counts) == pytest.approx(expected, abs=1e-12)


def test_krippendorff_published_value_and_undefined_cases() -> None:
    rows = KRIPPENDORFF_DATASETS["krippendorff-2011"]
    _, counts = _reliability(rows, ["a", "b", "c", "d", "e"])
    assert krippendorff_alpha(counts) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha([[2, 0], [3, 0]]) is None  # one category: undefined
    assert krippendorff_alpha([[1, 0], [0, 1]]) is None  # nothing pairable
    estimate = cluster_bootstrap_alpha(counts, [f"img{u // 2}" for u in range(12)],
                                       n_resamples=300, seed=0)
    assert estimate.n == 12 and estimate.ci_low <= estimate.value <= estimate.ci_high
