"""Benchmark: coverage of the accuracy interval and type-I error of the paired test, simulated.

Runs harness.stats.simulation on the full grid that docs/statistics.md records:

1. the mixed design (per data set: logit mean ~ U(-1, 3), image sd ~ U(0.5, 1.5), model-by-image
   sd 1.0) at 2, 3, 4, 5, 8, 13 and 60 images, ``--datasets`` data sets each (default 2,000),
   with main's former methods (percentile cluster bootstrap, McNemar on items) beside;
2. the mixed design with 1 to 6 items per image (drawn per image) at 5, 13 and 60 images;
3. fixed designs (logit mean 0..3 x image sd 0.5, 1, 2) at 5, 13 and 60 images, to show how
   far coverage swings with the truth when the data are few and discrete.

Prints Markdown tables. Seeded: the same command prints the same figures.

    python benchmarks/stats_simulation.py                 # the full grid, some minutes
    python benchmarks/stats_simulation.py --datasets 200  # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.stats.simulation import (  # noqa: E402
    MU_RANGE,
    SIGMA_RANGE,
    TAU,
    operating_characteristics,
    true_accuracy,
)

ITEMS_PER_IMAGE = {2: 3, 3: 3, 4: 3, 5: 3, 8: 3, 13: 3, 60: 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=int, default=2000)
    parser.add_argument("--fixed-datasets", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=2000)
    args = parser.parse_args()
    started = time.time()
    print(f"Mixed design: logit mean ~ U{MU_RANGE}, image sd ~ U{SIGMA_RANGE}, model-by-image "
          f"sd {TAU}; {args.datasets} data sets per row\n")
    print("| images x items | coverage (new) | coverage (old bootstrap) | type-I (new test) "
          "| type-I (old McNemar on items) |")
    print("|---|---|---|---|---|")
    for n_images, items in ITEMS_PER_IMAGE.items():
        r = operating_characteristics(n_images, items, args.datasets, seed=1000 + n_images,
                                      n_permutations=args.permutations, with_old=True)
        print(f"| {n_images} x {items} | {r.coverage:.3f} | {r.coverage_old:.3f} | "
              f"{r.rejection:.3f} | {r.rejection_old:.3f} |", flush=True)
    print(f"\nUnequal images: 1 to 6 items per image, otherwise the mixed design; "
          f"{args.datasets} data sets per row\n")
    print("| images x items | coverage (new) | coverage (old bootstrap) | type-I (new test) "
          "| type-I (old McNemar on items) |")
    print("|---|---|---|---|---|")
    for n_images in (5, 13, 60):
        r = operating_characteristics(n_images, (1, 6), args.datasets, seed=2000 + n_images,
                                      n_permutations=args.permutations, with_old=True)
        print(f"| {n_images} x 1-6 | {r.coverage:.3f} | {r.coverage_old:.3f} | "
              f"{r.rejection:.3f} | {r.rejection_old:.3f} |", flush=True)
    print(f"\nFixed designs: {args.fixed_datasets} data sets per cell, coverage (type-I)\n")
    print("| images x items | logit mean | true accuracy at image sd 1 | image sd 0.5 | sd 1 "
          "| sd 2 |")
    print("|---|---|---|---|---|---|")
    for n_images in (5, 13, 60):
        items = ITEMS_PER_IMAGE[n_images]
        for mu in (0.0, 1.0, 2.0, 3.0):
            cells = []
            for sigma in (0.5, 1.0, 2.0):
                r = operating_characteristics(n_images, items, args.fixed_datasets,
                                              seed=int(100 * mu + 10 * sigma) + n_images,
                                              mu=mu, sigma=sigma,
                                              n_permutations=args.permutations)
                cells.append(f"{r.coverage:.3f} ({r.rejection:.3f})")
            truth = true_accuracy(mu, (1.0 + TAU**2) ** 0.5)
            print(f"| {n_images} x {items} | {mu:g} | {truth:.2f} | " + " | ".join(cells)
                  + " |", flush=True)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
