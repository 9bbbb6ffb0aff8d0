"""Paired tests of two models on the same items, clustered by image: pure functions, no I/O.

Items that share an image are not independent, and one item asked at 0, 1 and 2 shots is one
item three times. :func:`clustered_paired_test` therefore reduces each image to one number,
the mean paired difference (A - B) over all its items in all tasks, and runs a sign-flip
permutation test on those per-image means (Fisher 1935; Pitman 1937): under the null that A
and B are exchangeable on every image, each image's difference is as likely to carry either
sign. With one paired item per image this is exactly McNemar's test, which
:func:`mcnemar_exact` keeps available. The p-value is the mid-p (Lancaster 1961), as
Fagerland, Lydersen & Laake (2013) recommend for McNemar's test; the exact, conservative
p-value is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats.clusters import cluster_codes

#: Enumerate all 2^k sign patterns up to this many images with a nonzero difference.
EXACT_MAX_CLUSTERS = 20
SIGN_FLIP_EXACT = "cluster sign-flip permutation (exact)"
SIGN_FLIP_MONTE_CARLO = "cluster sign-flip permutation (Monte Carlo)"
MCNEMAR = "McNemar (one item per image)"
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired binary outcomes.

    ``only_a`` counts pairs right under A and wrong under B; ``only_b`` the reverse.
    """

    only_a: int
    only_b: int
    n_pairs: int
    p_value: float


def mcnemar_exact(a_outcomes: Sequence[bool], b_outcomes: Sequence[bool]) -> McNemarResult:
    """Two-sided exact McNemar test: a binomial test of the discordant pairs against 1/2.

    Valid only when pairs are independent (one item per image). Concordant pairs carry no
    information about which side is better, so only the discordant ones enter the test. With
    no discordant pair the p-value is 1.
    """
    a = np.asarray(a_outcomes, dtype=bool)
    b = np.asarray(b_outcomes, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("a_outcomes and b_outcomes differ in length")
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemarResult(only_a, only_b, int(a.size), 1.0)
    from scipy.stats import binom

    # Binomial(discordant, 1/2) is symmetric, so the two-sided p-value doubles one tail.
    tail = float(binom.cdf(min(only_a, only_b), discordant, 0.5))
    return McNemarResult(only_a, only_b, int(a.size), min(1.0, 2.0 * tail))


@dataclass(frozen=True)
class SignFlip:
    """A two-sided sign-flip test of ``sum(d) = 0``.

    ``p_value`` is the mid-p: P(|T*| > |T|) + P(|T*| = |T|) / 2; ``p_exact`` the conservative
    P(|T*| >= |T|); ``min_p`` the smallest exact p-value the data allow (2 / 2^k).
    """

    p_value: float
    p_exact: float
    min_p: float
    n_nonzero: int
    exact: bool
    n_permutations: int


def sign_flip_test(differences: Sequence[float] | np.ndarray, *, exact_max: int = EXACT_MAX_CLUSTERS,
                   n_permutations: int = 10_000, seed: int = 0) -> SignFlip:
    """Sign-flip permutation test on per-cluster ``differences``.

    Zeros carry no sign and are left out. With at most ``exact_max`` nonzero differences every
    sign pattern is enumerated; beyond, ``n_permutations`` random patterns are drawn with
    ``seed`` and the observed one counted among them, so the p-value is never 0.
    """
    d = np.asarray(differences, dtype=float)
    d = d[np.abs(d) > _TOLERANCE]
    k = int(d.size)
    if k == 0:
        return SignFlip(1.0, 1.0, 1.0, 0, True, 1)
    observed = abs(float(d.sum()))
    scale = _TOLERANCE * max(1.0, float(np.abs(d).sum()))
    greater = equal = 0
    if k <= exact_max:
        total = 2**k
        chunk = 1 << 16
        bits = np.arange(k)
        for start in range(0, total, chunk):
            patterns = np.arange(start, min(start + chunk, total))[:, None]
            signs = 1.0 - 2.0 * ((patterns >> bits) & 1)
            sums = np.abs(signs @ d)
            greater += int(np.sum(sums > observed + scale))
            equal += int(np.sum(np.abs(sums - observed) <= scale))
        return SignFlip((greater + equal / 2) / total, (greater + equal) / total,
                        min(1.0, 2.0 / total), k, True, total)
    rng = np.random.default_rng(seed)
    for start in range(0, n_permutations, 1 << 14):
        size = min(1 << 14, n_permutations - start)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(size, k))
        sums = np.abs(signs @ d)
        greater += int(np.sum(sums > observed + scale))
        equal += int(np.sum(np.abs(sums - observed) <= scale))
    draws = n_permutations + 1  # the observed pattern counts as one draw, tied with itself
    return SignFlip((greater + (equal + 1) / 2) / draws, (greater + equal + 1) / draws,
                    min(1.0, 2.0 ** (1 - k)), k, False, n_permutations)


@dataclass(frozen=True)
class PairedTest:
    """A paired test of A against B on ``n_pairs`` items over ``n_clusters`` images.

    ``p_value`` is the mid-p, ``p_exact`` the conservative p-value; ``min_p`` the smallest
    exact p-value these images allow (with 5 images, 0.0625: no result can reach p < 0.05).
    ``only_a``/``only_b`` count items right under one run only.
    """

    method: str
    p_value: float
    p_exact: float
    min_p: float
    n_pairs: int
    n_clusters: int
    n_clusters_differing: int
    only_a: int
    only_b: int
    n_permutations: int
    seed: int | None


def clustered_paired_test(a_outcomes: Sequence[bool], b_outcomes: Sequence[bool],
                          clusters: Sequence[str], *, exact_max: int = EXACT_MAX_CLUSTERS,
                          n_permutations: int = 10_000, seed: int = 0) -> PairedTest:
    """Test A = B on paired 0/1 outcomes, one unit per image (module docstring).

    Each image contributes the mean of A - B over its paired items, whatever the tasks and
    shot counts they come from. With one item per image the method is named McNemar (the
    sign-flip test on +-1 differences is exactly McNemar's test).
    """
    a = np.asarray(a_outcomes, dtype=float)
    b = np.asarray(b_outcomes, dtype=float)
    if a.shape != b.shape or a.size != len(clusters):
        raise ValueError("a_outcomes, b_outcomes and clusters differ in length")
    codes, k = cluster_codes(list(clusters))
    sizes = np.bincount(codes, minlength=k)
    per_image = np.bincount(codes, weights=a - b, minlength=k) / np.maximum(sizes, 1)
    flip = sign_flip_test(per_image, exact_max=exact_max, n_permutations=n_permutations,
                          seed=seed)
    if k and int(sizes.max()) == 1:
        method = MCNEMAR
    else:
        method = SIGN_FLIP_EXACT if flip.exact else SIGN_FLIP_MONTE_CARLO
    return PairedTest(
        method=method, p_value=flip.p_value, p_exact=flip.p_exact, min_p=flip.min_p,
        n_pairs=int(a.size), n_clusters=k, n_clusters_differing=flip.n_nonzero,
        only_a=int(np.sum((a == 1) & (b == 0))), only_b=int(np.sum((a == 0) & (b == 1))),
        n_permutations=flip.n_permutations, seed=None if flip.exact else seed)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjustment: family-wise error control over all the tests."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
