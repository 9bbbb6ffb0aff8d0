"""CLIP preprocessing, device planning, and the GPU benchmark script at tiny sizes."""

from __future__ import annotations

import io
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.errors import BenchError
from harness.models.magma.preprocess import CLIP_MEAN, CLIP_STD, preprocess

ROOT = Path(__file__).resolve().parents[2]


def test_solid_colour_normalises_to_clip_values():
    pixels = preprocess(Image.new("RGB", (500, 300), (255, 0, 128)), size=64)
    assert pixels.shape == (3, 64, 64)
    expected = [(1.0 - CLIP_MEAN[0]) / CLIP_STD[0], (0.0 - CLIP_MEAN[1]) / CLIP_STD[1],
                (128 / 255 - CLIP_MEAN[2]) / CLIP_STD[2]]
    assert torch.allclose(pixels.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-5)


def test_shorter_side_is_resized_then_centre_cropped():
    # a wide image: left third red, middle green, right third blue. After resizing the height
    # to 32 and cropping the centre 32 columns, only green remains.
    array = np.zeros((60, 180, 3), dtype=np.uint8)
    array[:, :60, 0] = 255
    array[:, 60:120, 1] = 255
    array[:, 120:, 2] = 255
    pixels = preprocess(Image.fromarray(array), size=32)
    green_only = (torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1) - torch.tensor(CLIP_MEAN).view(3, 1, 1)) \
        / torch.tensor(CLIP_STD).view(3, 1, 1)
    assert torch.allclose(pixels[:, :, 8:24], green_only.expand(3, 32, 16), atol=0.05)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK"])
def test_any_mode_becomes_three_channels(mode):
    assert preprocess(Image.new(mode, (40, 50)), size=32).shape == (3, 32, 32)


def test_truncated_image_is_a_clear_error():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="PNG")
    broken = Image.open(io.BytesIO(buffer.getvalue()[:60]))
    with pytest.raises(BenchError, match="cannot read image"):
        preprocess(broken, size=32)


def test_device_plans():
    from harness.models.magma.checkpoint import _device_of, plan_devices

    assert plan_devices(None, "cpu", torch.float32) == {"": torch.device("cpu")}
    with pytest.raises(BenchError, match="not a device"):
        plan_devices(None, "gpu0", torch.float32)
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="no GPU"):
            plan_devices(None, "cuda", torch.float32)
        assert plan_devices(None, "auto", torch.float32) == {"": torch.device("cpu")}
    plan = plan_devices(None, {"lm.transformer.h.0": "cpu", "lm": 0, "image_prefix": "cpu"}, torch.float32)
    assert _device_of("lm.transformer.h.0.ln_1.weight", plan) == torch.device("cpu")
    assert _device_of("lm.transformer.h.1.ln_1.weight", plan) == torch.device("cuda", 0)
    with pytest.raises(BenchError, match="does not fit"):
        plan_devices(None, {"lm": "disk"}, torch.float32)


@pytest.mark.slow
def test_gpu_benchmark_script_runs_at_tiny_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gpu_magma.py", "--tiny", "--repeats", "1", "--dtype", "float32",
                                      "--modes", "static,eager", "--work-dir", str(tmp_path)])
    runpy.run_path(str(ROOT / "benchmarks" / "gpu_magma.py"), run_name="__main__")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tiny"] and result["load_s"] >= 0
    for mode in ("static", "eager"):  # 8 requests x 15 new tokens, no EOS
        assert result[f"ours_{mode}_batch_1"]["new_tokens"] == result[f"ours_{mode}_batch_8"]["new_tokens"] == 120
        assert result[f"ours_{mode}_same_tokens_batch_1_vs_8"] is True
        assert result[f"ours_{mode}_batch_8"]["tokens_per_s"] > 0
    assert result["transformers_generate_batch_1"]["new_tokens"] == 120
    assert result["transformers_generate_batch_8"]["tokens_per_s"] > 0
    assert not list(tmp_path.iterdir())  # the random checkpoint was removed
