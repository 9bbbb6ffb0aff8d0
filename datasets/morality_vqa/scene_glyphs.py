"""Noto Color Emoji glyphs as Pillow sprites: one emoji cropped to its ink, a face set on a body.

The font is Debian's ``fonts-noto-color-emoji`` (glyph artwork Apache-2.0, font OFL-1.1).
Nothing here draws a whole scene; ``compose_scenes.py`` and ``v1_scenes.py`` do.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# Noto Color Emoji is a bitmap font: it only renders at its native strike size.
EMOJI_NATIVE_SIZE = 109


@functools.cache
def _emoji_font() -> ImageFont.FreeTypeFont:
    if not EMOJI_FONT.exists():
        raise SystemExit(f"{EMOJI_FONT} is missing: apt-get install fonts-noto-color-emoji")
    return ImageFont.truetype(
        str(EMOJI_FONT), EMOJI_NATIVE_SIZE, layout_engine=ImageFont.Layout.RAQM
    )


class MissingGlyph(ValueError):
    """The emoji font draws nothing, or more than one glyph, for a text meant to be one emoji."""


def glyph(text: str, height: int, *, mirror: bool = False) -> Image.Image:
    """Render one emoji (ZWJ sequences included) cropped to its ink and scaled to ``height``.

    Raises:
        MissingGlyph: the font has no glyph for ``text``, or draws it as several glyphs
            (a ZWJ sequence it does not know falls apart into its parts).
    """
    font = _emoji_font()
    # Every glyph of this font has the same advance, so one emoji is exactly one advance wide.
    if font.getlength(text) > font.getlength("\u2b50") + 0.5:
        raise MissingGlyph(f"the emoji font draws {text!r} as several glyphs, not one")
    canvas = Image.new("RGBA", (3 * EMOJI_NATIVE_SIZE, 2 * EMOJI_NATIVE_SIZE), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((4, 4), text, font=font, embedded_color=True)
    bbox = canvas.getbbox()
    if bbox is None:
        raise MissingGlyph(f"the emoji font has no glyph for {text!r}")
    ink = canvas.crop(bbox)
    width = max(1, round(ink.width * height / ink.height))
    ink = ink.resize((width, height), Image.Resampling.LANCZOS)
    return ImageOps.mirror(ink) if mirror else ink


def figure_with_head(body: str, head: str, height: int, *, mirror: bool = False) -> Image.Image:
    """A full-body person glyph whose head is replaced by a face glyph (e.g. an old or crying face).

    The emoji set has faces for old and crying people but only young adults with bodies, so
    a scene that needs an old woman or a crying child standing in it is made from both.
    """
    body_img = glyph(body, height)
    head_size = round(height * 0.36)
    head_img = glyph(head, head_size)
    out = Image.new("RGBA", (max(body_img.width, head_img.width), height + head_size // 6))
    out.alpha_composite(body_img, ((out.width - body_img.width) // 2, head_size // 6))
    out.alpha_composite(head_img, ((out.width - head_img.width) // 2, 0))
    return ImageOps.mirror(out) if mirror else out


def put(scene: Image.Image, sprite: Image.Image, x: int, bottom: int) -> None:
    """Paste ``sprite`` with its horizontal centre at ``x`` and its feet on ``bottom``."""
    scene.alpha_composite(sprite, (x - sprite.width // 2, bottom - sprite.height))
