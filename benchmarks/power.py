"""Power of a split: the smallest accuracy difference between two models it detects.

Simulates two models answering the items of a split (``datasets/morality_vqa/test.jsonl`` by
default) with the split's own structure (which items share an image), and finds the smallest
difference in accuracy that the project's paired test, clustered by image, detects with 80%
power at the 5% level. docs/dataset.md quotes its figure.

The model of an answer (assumptions; each is an option):
- Model A is right with mean probability ``--base`` (0.60); model B with ``--base`` + d.
- Item i on image g is right for model m with probability expit(mu_m + u_g + w_mg): u_g ~
  N(0, ``--sigma-shared``^2) is the image's difficulty, shared by both models (1.0); w_mg ~
  N(0, ``--sigma-own``^2) is how model m in particular finds that image (1.0). mu_m is set so
  that the model's mean accuracy over images is exactly its target. Given the image, answers
  are independent. The within-image correlation of one model's answers (the latent-scale
  intra-class correlation) is (s^2 + t^2) / (s^2 + t^2 + pi^2 / 3), 0.38 with the defaults;
  the share of it the two models have in common is s^2 / (s^2 + t^2), 0.5. These are the
  settings of the statistics simulation (harness/stats/), given, not estimated: no model's
  answers on the v2 data exist yet.
- Polarity pairs and image contrasts live inside images or scenarios; the test treats each
  image as one unit, so the pairs need no model of their own.
- The test: ``harness.stats.paired.clustered_paired_test`` (a sign-flip permutation test on
  per-image mean differences) where it exists, else a paired t-test on the per-image mean
  differences (k - 1 degrees of freedom); the output says which one ran.

Simulated data sets reuse their random numbers across differences (common random numbers),
so power rises smoothly with d. Usage:
    python benchmarks/power.py [--data PATH] [--sims 1000] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT / "datasets" / "morality_vqa" / "test.jsonl"
POWER = 0.80
ALPHA = 0.05
T_TEST = "paired t-test on per-image mean differences"


def image_of_each_item(path: Path) -> list[str]:
    """The image of every item of a split (JSON Lines with an ``image`` field)."""
    images = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                images.append(str(json.loads(line)["image"]))
    if not images:
        raise SystemExit(f"{path}: no items")
    return images


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)


def _mean_accuracy(mu: float, scale: float) -> float:
    nodes, weights = _NODES, _WEIGHTS
    return float((weights / (1.0 + np.exp(-(mu + scale * nodes)))).sum() / weights.sum())


def logit_mean_for(accuracy: float, scale: float) -> float:
    """mu with E[expit(mu + scale Z)] = accuracy (bisection; the mean rises with mu)."""
    low, high = -20.0, 20.0
    for _ in range(100):
        middle = (low + high) / 2
        if _mean_accuracy(middle, scale) < accuracy:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def t_test_p_values(per_image: np.ndarray) -> np.ndarray:
    """Two-sided p-values of a one-sample t-test of each row's mean against 0."""
    from scipy.stats import t

    k = per_image.shape[1]
    mean = per_image.mean(axis=1)
    sd = per_image.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(sd > 0, mean / (sd / np.sqrt(k)), np.where(mean == 0, 0.0, np.inf))
    return 2 * t.sf(np.abs(statistic), k - 1)


def project_test() -> tuple[str, Callable[..., float] | None]:
    """The project's paired clustered test, if harness/stats/ has one."""
    try:
        from harness.stats.paired import clustered_paired_test  # type: ignore[import-not-found]
    except ImportError:
        return T_TEST, None

    def p_value(a: np.ndarray, b: np.ndarray, clusters: Sequence[str], seed: int) -> float:
        return float(clustered_paired_test(a, b, clusters, n_permutations=2000,
                                           seed=seed).p_value)

    return "harness.stats.paired.clustered_paired_test (cluster sign-flip permutation)", p_value


def simulate_power(images: Sequence[str], differences: Sequence[float], *, base: float,
                   sigma_shared: float, sigma_own: float, sims: int, seed: int,
                   test: Callable[..., float] | None) -> list[float]:
    """Power at each difference (accuracy points / 100) for the items' image structure."""
    _, codes = np.unique(np.asarray(images), return_inverse=True)
    k = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=k)
    membership = np.eye(k)[codes]  # items x images
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, sigma_shared, (sims, k))
    own_a = rng.normal(0, sigma_own, (sims, k))
    own_b = rng.normal(0, sigma_own, (sims, k))
    uniform_a = rng.random((sims, codes.size))
    uniform_b = rng.random((sims, codes.size))
    scale = float(np.hypot(sigma_shared, sigma_own))
    mu_a = logit_mean_for(base, scale)
    right_a = uniform_a < 1 / (1 + np.exp(-(mu_a + shared + own_a)[:, codes]))
    labels = [str(c) for c in codes]
    powers = []
    for difference in differences:
        mu_b = logit_mean_for(base + difference, scale)
        right_b = uniform_b < 1 / (1 + np.exp(-(mu_b + shared + own_b)[:, codes]))
        if test is None:
            diff = right_b.astype(float) - right_a.astype(float)
            p_values = t_test_p_values(diff @ membership / sizes)
        else:
            p_values = np.array([test(right_a[s], right_b[s], labels, seed + s)
                                 for s in range(sims)])
        powers.append(float(np.mean(p_values < ALPHA)))
    return powers


def smallest_detected(images: Sequence[str], **settings: object) -> tuple[float | None, list[tuple[float, float]]]:
    """The smallest difference (1-point steps) with power >= 80%, and the curve up to it."""
    curve: list[tuple[float, float]] = []
    base = float(settings["base"])  # type: ignore[arg-type]
    for points in range(1, int(round((0.99 - base) * 100)) + 1):
        (power,) = simulate_power(images, [points / 100], **settings)  # type: ignore[arg-type]
        curve.append((points / 100, power))
        if power >= POWER:
            return points / 100, curve
    return None, curve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a split's JSON Lines file")
    parser.add_argument("--base", type=float, default=0.60, help="model A's accuracy")
    parser.add_argument("--sigma-shared", type=float, default=1.0,
                        help="SD of the image effect both models share (logit scale)")
    parser.add_argument("--sigma-own", type=float, default=1.0,
                        help="SD of each model's own image effect (logit scale)")
    parser.add_argument("--sims", type=int, default=1000, help="simulated data sets per difference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--t-test", action="store_true",
                        help="use the per-image t-test even where the project has its own test")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    images = image_of_each_item(args.data)
    name, test = (T_TEST, None) if args.t_test else project_test()
    started = time.perf_counter()
    found, curve = smallest_detected(images, base=args.base, sigma_shared=args.sigma_shared,
                                     sigma_own=args.sigma_own, sims=args.sims, seed=args.seed,
                                     test=test)
    total = args.sigma_shared**2 + args.sigma_own**2
    report = {
        "data": str(args.data), "items": len(images), "images": len(set(images)),
        "test": name, "alpha": ALPHA, "power": POWER, "base_accuracy": args.base,
        "sigma_shared": args.sigma_shared, "sigma_own": args.sigma_own,
        "within_image_icc": total / (total + np.pi**2 / 3),
        "shared_share": args.sigma_shared**2 / total if total else None,
        "sims": args.sims, "seed": args.seed,
        "smallest_difference_points": None if found is None else round(100 * found),
        "curve": [{"points": round(100 * d), "power": p} for d, p in curve],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['items']} items on {report['images']} images ({args.data})")
    print(f"test: {name}; base accuracy {args.base:.0%}; within-image ICC "
          f"{report['within_image_icc']:.2f}, shared by the models {report['shared_share']:.2f}; "
          f"{args.sims} simulated data sets per difference")
    for point in report["curve"]:
        print(f"  +{point['points']:>2} points: power {point['power']:.1%}")
    if found is None:
        print("no difference up to 99% accuracy reaches 80% power")
    else:
        print(f"smallest difference detected with {POWER:.0%} power at the {ALPHA:.0%} level: "
              f"{report['smallest_difference_points']} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
