"""Small helpers shared by model adapters: stop strings and image modes (no heavy imports)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """Cut ``text`` before the first stop string found in it (the earliest position wins)."""
    cuts = [text.find(stop) for stop in until if stop and stop in text]
    return text[: min(cuts)] if cuts else text


def to_rgb(image: Image) -> Image:
    """The image as RGB; transparent pixels become white, as transformers' processors do.

    A plain ``convert("RGB")`` would keep whatever colour hides under transparent pixels
    (often black), so a transparent PNG would look different from how a person sees it.
    """
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
