"""What a cluster is, and the one engine that resamples clusters: pure functions, no I/O.

Questions about one image are not independent (the same item is also asked at 0, 1 and 2
shots), so every interval and test in ``harness.stats`` treats the *image* as the unit. This
module holds the one definition of a sample's cluster and the one bootstrap draw of clusters
that every bootstrap in the harness goes through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def image_cluster(image_ids: Sequence[str] | None, doc_id: object,
                  cluster_id: str | None = None) -> str:
    """The cluster of a sample: its first own image, else ``doc:<doc_id>``.

    ``image_ids`` holds the item's own images only, never its demonstrations'. The first one is
    the image the question is about, so every question on that image, in every task and at
    every shot count, falls in one cluster. A text-only sample is its own cluster, shared by
    every task that asks the same document. Under an image ablation the shown images are not
    the item's own, and ``cluster_id`` (the item's own first image) names the cluster instead.
    """
    if cluster_id:
        return str(cluster_id)
    own = [str(i) for i in image_ids or () if i]
    return own[0] if own else f"doc:{doc_id}"


def cluster_codes(clusters: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each row's cluster as an integer code 0..k-1 (sorted by name), and k."""
    if len(clusters) == 0:
        return np.zeros(0, dtype=int), 0
    _, codes = np.unique(np.asarray([str(c) for c in clusters], dtype=str), return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1


def cluster_draws(n_clusters: int, n_resamples: int, seed: int) -> np.ndarray:
    """The one bootstrap engine: ``n_resamples`` x ``n_clusters`` cluster codes, drawn with
    replacement, one row per resample (each resample draws as many clusters as there are)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_clusters, size=(n_resamples, n_clusters))


def cluster_resamples(clusters: Sequence[str], n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each resample of :func:`cluster_draws`: every row of every drawn cluster,
    so items that share an image move together."""
    codes, k = cluster_codes(clusters)
    members = [np.flatnonzero(codes == c) for c in range(k)]
    for drawn in cluster_draws(k, n_resamples, seed):
        yield np.concatenate([members[c] for c in drawn])


def cluster_bootstrap_means(values: Sequence[float] | np.ndarray, clusters: Sequence[str], n_resamples: int,
                            seed: int) -> np.ndarray:
    """The mean of ``values`` in each resample of :func:`cluster_draws` (fast: per-cluster sums)."""
    data = np.asarray(values, dtype=float)
    codes, k = cluster_codes(clusters)
    sums = np.bincount(codes, weights=data, minlength=k)
    counts = np.bincount(codes, minlength=k).astype(float)
    drawn = cluster_draws(k, n_resamples, seed)
    return sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
