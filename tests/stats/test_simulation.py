"""The statistics checked on synthetic clustered data (harness.stats.simulation), seeded.

The full grid, with at least 1,000 data sets per size, is benchmarks/stats_simulation.py; its
figures are in docs/statistics.md. Here 600 data sets per size and a wider band.
"""

from __future__ import annotations

import pytest

from harness.stats.simulation import operating_characteristics


@pytest.mark.parametrize("n_images,items_per_image", [(5, 3), (13, 3), (60, 4)])
def test_interval_covers_and_paired_test_holds_its_level(n_images: int,
                                                          items_per_image: int) -> None:
    result = operating_characteristics(n_images, items_per_image, 600, seed=n_images,
                                       n_permutations=1000)
    assert 0.92 <= result.coverage <= 0.98
    if n_images >= 13:
        assert 0.02 <= result.rejection <= 0.08
    else:
        # With 5 images only 2^5 sign patterns exist: the smallest mid-p is 1/32, so a valid
        # test rejects far less than 5% of the time (docs/statistics.md, "Limits").
        assert result.rejection <= 0.07
