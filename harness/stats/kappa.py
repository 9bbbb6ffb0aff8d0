"""Agreement statistics between raters: pure functions over label lists, no I/O.

Cohen's kappa for two raters, Fleiss' kappa and Krippendorff's alpha (nominal) for several,
confusion matrices and a percentile bootstrap CI that resamples whole clusters (images), since
questions sharing an image are not independent. Nothing here reads files or knows about judges.

Items with missing labels: Krippendorff's alpha is made for them (an item labelled once cannot
be paired and adds nothing; every other item counts with as many labels as it has). Fleiss'
kappa here takes the same items, each with its own number of raters (Fleiss' per-item
agreement over the pairs of its own raters); an item with fewer than two labels is an error,
never dropped silently: callers count such items and report them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from harness.stats.clusters import cluster_resamples


@dataclass(frozen=True)
class KappaEstimate:
    """A kappa with its percentile bootstrap CI; ``value`` is None when kappa is undefined."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


def _codes(a: Sequence[Hashable], b: Sequence[Hashable],
           labels: Sequence[Hashable] | None) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    if len(a) != len(b):
        raise ValueError("the two raters' label lists differ in length")
    categories = list(labels) if labels is not None else sorted(set(a) | set(b), key=str)
    index = {label: i for i, label in enumerate(categories)}
    missing = (set(a) | set(b)) - set(index)
    if missing:
        raise ValueError(f"labels {sorted(map(str, missing))} are not among the categories")
    return (np.fromiter((index[x] for x in a), dtype=int, count=len(a)),
            np.fromiter((index[x] for x in b), dtype=int, count=len(b)), categories)


def confusion_matrix(rows: Sequence[Hashable], cols: Sequence[Hashable],
                     labels: Sequence[Hashable]) -> list[list[int]]:
    """Counts ``m[i][j]`` of items labelled ``labels[i]`` by ``rows`` and ``labels[j]`` by ``cols``."""
    row_codes, col_codes, categories = _codes(rows, cols, labels)
    k = len(categories)
    matrix = np.bincount(row_codes * k + col_codes, minlength=k * k).reshape(k, k)
    return matrix.tolist()


def _kappa_from_codes(a: np.ndarray, b: np.ndarray, k: int) -> float | None:
    n = a.size
    if n == 0:
        return None
    table = np.bincount(a * k + b, minlength=k * k).reshape(k, k) / n
    observed = float(np.trace(table))
    expected = float(table.sum(axis=1) @ table.sum(axis=0))
    if np.isclose(expected, 1.0):
        return None  # both raters used one and the same category: chance explains everything
    return (observed - expected) / (1.0 - expected)


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable],
                labels: Sequence[Hashable] | None = None) -> float | None:
    """Cohen's kappa of two raters over the same items; None when it is undefined.

    It is undefined when there are no items, or when chance agreement is already 1 (both
    raters gave every item the same single category).
    """
    codes_a, codes_b, categories = _codes(a, b, labels)
    return _kappa_from_codes(codes_a, codes_b, len(categories))


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of how many raters chose each category.

    Items may have different numbers of raters (each at least two): an item's agreement is the
    share of agreeing pairs among its own raters, and chance agreement comes from the pooled
    category shares. With the same raters for every item this is Fleiss (1971). None when
    undefined (no item, or every label in one category).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return None
    raters = table.sum(axis=1)
    if np.any(raters < 2):
        raise ValueError("Fleiss' kappa needs at least two labels for every item; leave out "
                         "(and report) items labelled once")
    per_item = (table * (table - 1)).sum(axis=1) / (raters * (raters - 1))
    observed = float(per_item.mean())
    shares = table.sum(axis=0) / table.sum()
    expected = float((shares**2).sum())
    if np.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha(counts: Sequence[Sequence[int]]) -> float | None:
    """Krippendorff's alpha for nominal labels from an items x categories count table.

    Items may have any number of labels: one labelled fewer than twice cannot be paired and
    adds nothing (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"). None when
    undefined: fewer than two pairable labels, or every pairable label in one category.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return None
    table = table[table.sum(axis=1) >= 2]
    if table.shape[0] == 0:
        return None
    weights = 1.0 / (table.sum(axis=1) - 1.0)
    # The coincidence matrix: o[c][k] = sum over items of n_c * (n_k - [c == k]) / (m - 1).
    coincidences = (table * weights[:, None]).T @ table - np.diag((table * weights[:, None]).sum(axis=0))
    by_value = coincidences.sum(axis=1)
    total = float(by_value.sum())
    expected_disagreement = total**2 - float((by_value**2).sum())
    if total < 2 or np.isclose(expected_disagreement, 0.0):
        return None
    observed_disagreement = total - float(np.trace(coincidences))
    return 1.0 - (total - 1.0) * observed_disagreement / expected_disagreement


def fleiss_table(ratings: Sequence[Sequence[Hashable]],
                 labels: Sequence[Hashable] | None = None) -> tuple[list[list[int]], list[Hashable]]:
    """Turn per-item lists of labels into the counts table ``fleiss_kappa`` takes."""
    categories = list(labels) if labels is not None else sorted(
        {label for item in ratings for label in item}, key=str)
    index = {label: i for i, label in enumerate(categories)}
    table = [[0] * len(categories) for _ in ratings]
    for row, item in zip(table, ratings):
        for label in item:
            row[index[label]] += 1
    return table, categories


def cluster_bootstrap_kappa(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    clusters: Sequence[str] | None = None,
    labels: Sequence[Hashable] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> KappaEstimate:
    """Cohen's kappa with a percentile bootstrap CI that resamples whole clusters.

    Resamples in which kappa is undefined are dropped; with fewer than half of them left the
    interval is reported as unknown (None) rather than as a misleadingly narrow one.
    """
    codes_a, codes_b, categories = _codes(a, b, labels)
    k = len(categories)
    n = int(codes_a.size)
    value = _kappa_from_codes(codes_a, codes_b, k)
    if n == 0:
        return KappaEstimate(None, None, None, 0)
    return _cluster_percentile_ci(
        value, n, clusters, lambda rows: _kappa_from_codes(codes_a[rows], codes_b[rows], k),
        n_resamples, confidence, seed)


class TableBootstrap(Protocol):
    def __call__(self, counts: Sequence[Sequence[int]], clusters: Sequence[str] | None = None,
                 *, n_resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> KappaEstimate: ...


def _table_bootstrap(statistic: Callable[[Sequence[Sequence[int]]], float | None],
                     summary: str) -> TableBootstrap:
    """``statistic`` of an items x categories count table, with a percentile CI that resamples
    whole clusters of items (one function per statistic, documented by ``summary``)."""

    def bootstrap(counts: Sequence[Sequence[int]], clusters: Sequence[str] | None = None, *,
                  n_resamples: int = 2000, confidence: float = 0.95,
                  seed: int = 0) -> KappaEstimate:
        table = np.asarray(counts, dtype=float)
        n = int(table.shape[0]) if table.ndim == 2 else 0
        if n == 0:
            return KappaEstimate(None, None, None, 0)
        return _cluster_percentile_ci(
            statistic(table.tolist()), n, clusters,
            lambda rows: statistic(table[rows].tolist()), n_resamples, confidence, seed)

    bootstrap.__doc__ = summary
    return bootstrap


cluster_bootstrap_fleiss = _table_bootstrap(
    fleiss_kappa, "Fleiss' kappa with a percentile bootstrap CI that resamples whole clusters "
    "of items.")
cluster_bootstrap_alpha = _table_bootstrap(
    krippendorff_alpha, "Krippendorff's alpha (nominal) with a percentile CI that resamples "
    "whole clusters.")


def _cluster_percentile_ci(
    value: float | None,
    n: int,
    clusters: Sequence[str] | None,
    statistic: Callable[[np.ndarray], float | None],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> KappaEstimate:
    """Percentile CI of ``statistic`` over cluster resamples of the ``n`` rows.

    Resamples in which the statistic is undefined are dropped; with fewer than half of them
    left the interval is unknown (None) rather than misleadingly narrow.
    """
    names = list(clusters) if clusters is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError("items and clusters differ in length")
    estimates = [e for rows in cluster_resamples(names, n_resamples, seed)
                 if (e := statistic(rows)) is not None]
    if len(estimates) < n_resamples / 2:
        return KappaEstimate(value, None, None, n)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(estimates), [alpha, 1.0 - alpha])
    return KappaEstimate(value, float(low), float(high), n)
