"""CLIP's image preprocessing, as MAGMA applies it, without torchvision.

Resize the shorter side to ``size`` (bicubic), centre-crop ``size`` x ``size``, convert to RGB,
scale to [0, 1] and normalise with CLIP's mean and std. This module only turns PIL images into
tensors; it knows nothing of the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.errors import BenchError

if TYPE_CHECKING:
    from PIL.Image import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def resize_shorter_side(image: Image, size: int) -> Image:
    """Bicubic resize so the shorter side is ``size`` (the longer one truncates, like torchvision)."""
    from PIL import Image as PILImage

    width, height = image.size
    if min(width, height) == size:
        return image
    if width <= height:
        new_size = (size, int(size * height / width))
    else:
        new_size = (int(size * width / height), size)
    return image.resize(new_size, PILImage.Resampling.BICUBIC)


def center_crop(image: Image, size: int) -> Image:
    width, height = image.size
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def preprocess(image: Image, size: int = 384) -> torch.Tensor:
    """One image -> a normalised (3, size, size) float32 tensor."""
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise BenchError(f"cannot read image ({exc}); replace the damaged file") from None
    if image.width == 0 or image.height == 0:
        raise BenchError("image has no pixels; replace the file")
    rgb = image.convert("RGB")  # palette, alpha, greyscale and CMYK all become RGB first
    cropped = center_crop(resize_shorter_side(rgb, size), size)
    pixels = torch.from_numpy(np.asarray(cropped, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (pixels - mean) / std
