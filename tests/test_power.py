"""benchmarks/power.py: the power simulation behind docs/dataset.md's figure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_1samp

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("power", ROOT / "benchmarks" / "power.py")
assert _spec is not None and _spec.loader is not None
power = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(power)

# 40 images with 4 items each, like a v2 test split of 160 items.
IMAGES = [f"img-{i // 4}" for i in range(160)]
SETTINGS = {"base": 0.6, "sigma_shared": 1.0, "sigma_own": 1.0, "seed": 3, "test": None}


@pytest.mark.parametrize(("accuracy", "scale"), [(0.6, 1.414), (0.85, 0.5), (0.3, 2.0)])
def test_the_logit_mean_gives_the_target_mean_accuracy(accuracy: float, scale: float) -> None:
    mu = power.logit_mean_for(accuracy, scale)
    draws = np.random.default_rng(0).normal(mu, scale, 400_000)
    assert np.mean(1 / (1 + np.exp(-draws))) == pytest.approx(accuracy, abs=0.003)


def test_t_test_p_values_match_scipy() -> None:
    rows = np.random.default_rng(1).normal(0.1, 0.5, (5, 12))
    expected = [ttest_1samp(row, 0.0).pvalue for row in rows]
    assert power.t_test_p_values(rows) == pytest.approx(expected)


def test_no_difference_rejects_at_about_the_level() -> None:
    (rate,) = power.simulate_power(IMAGES, [0.0], sims=2000, **SETTINGS)
    assert 0.03 <= rate <= 0.07


def test_power_rises_with_the_difference_and_with_more_images() -> None:
    small, large = power.simulate_power(IMAGES, [0.05, 0.2], sims=600, **SETTINGS)
    assert small < 0.5 < large
    (twice,) = power.simulate_power(IMAGES + [f"x{i}" for i in IMAGES], [0.05], sims=600,
                                    **SETTINGS)
    assert twice > small


def test_clustering_costs_power() -> None:
    # The same 160 items on 40 images, or each on its own image: clustered data say less.
    settings = {**SETTINGS, "sigma_shared": 1.5, "sigma_own": 1.5}
    (clustered,) = power.simulate_power(IMAGES, [0.1], sims=800, **settings)
    (independent,) = power.simulate_power([str(i) for i in range(160)], [0.1], sims=800,
                                          **settings)
    assert clustered < independent - 0.1


def test_script_reports_the_smallest_difference(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "image": image}) + "\n"
                            for i, image in enumerate(IMAGES)))
    assert power.main(["--data", str(data), "--sims", "300", "--t-test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["items"], report["images"]) == (160, 40)
    found = report["smallest_difference_points"]
    curve = {point["points"]: point["power"] for point in report["curve"]}
    assert curve[found] >= 0.8 and all(p < 0.8 for d, p in curve.items() if d < found)
    assert report["within_image_icc"] == pytest.approx(2 / (2 + np.pi**2 / 3))
