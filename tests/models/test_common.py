"""Helpers shared by the adapters: stop strings and image modes."""

from __future__ import annotations

from PIL import Image

from harness.models.common import cut_at_stop, to_rgb


def test_cut_at_the_earliest_stop_string() -> None:
    assert cut_at_stop("Yes.\nQ: next A: no", ("Q:", "\n")) == "Yes."
    assert cut_at_stop("Yes, help her.", ("Q:",)) == "Yes, help her."
    assert cut_at_stop("Yes", ("", "es")) == "Y"  # an empty stop string is ignored


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (2, 1), (0, 0, 0, 0))  # fully transparent black
    image.putpixel((1, 0), (200, 10, 10, 255))
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 0)) == (200, 10, 10)
    palette = image.convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)
    grey = Image.new("L", (1, 1), 77)
    assert to_rgb(grey).getpixel((0, 0)) == (77, 77, 77)
