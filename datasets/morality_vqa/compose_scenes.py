"""Draw the images of the morality-VQA dataset from files installed on this machine.

Three kinds of image are made here:

- v2 scenes, from a writer's YAML source (``source/<writer>.yaml``): each image names a
  background (``scene_backgrounds.py``), optional plain ``shapes`` and emoji ``elements``.
  ``--source FILE --out DIR`` draws every image of FILE to ``DIR/<scenario>_<A|B>.png`` and
  writes ``DIR/layout.json``: for every image, where each role's drawn ink sits,
  ``{"<scenario>_A.png": {"<role>": [x0, y0, x1, y1], ...}, ...}`` (pixels, x1/y1 exclusive;
  a role given to several elements or shapes gets the box around all of them).
- v1's hand-drawn scenes (``v1_scenes.py``) and sample photographs copied from the wheels of
  scikit-image, matplotlib and scikit-learn: ``--v1`` rebuilds them into ``images/``.

Glyphs are Noto Color Emoji (Debian package ``fonts-noto-color-emoji``; artwork Apache-2.0,
font OFL-1.1). Nothing is downloaded. The harness never imports this script; ``build.py``
does, to draw the shipped images.

An element: ``{role, emoji, x, bottom, height}`` plus optional ``head`` (a face glyph set on
the body glyph), ``mirror: true`` and ``rotate`` (degrees, anticlockwise). ``x`` is the
sprite's horizontal centre, ``bottom`` the y of its lowest pixel, ``height`` its height.
A shape: ``{kind: rect|ellipse, box: [x0, y0, x1, y1]}``, ``{kind: line|polygon, xy: [x0, y0,
x1, y1, ...]}`` or ``{kind: text, xy: [x, y], text, size}``, each with optional ``fill``
(``[r, g, b]`` or a colour name), ``outline``, ``width``, ``role`` (to record it in the layout)
and ``over: true`` (draw it over the elements, e.g. water up to a swimmer's chest).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, also when this file is imported by path

import v1_scenes  # noqa: E402
from scene_backgrounds import BACKGROUNDS  # noqa: E402
from scene_glyphs import MissingGlyph, figure_with_head, glyph  # noqa: E402
from source_schema import load_source  # noqa: E402

IMAGES_DIR = HERE / "images"
SCENE_SIZE = (512, 384)
TEXT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

Box = list[int]
Layout = dict[str, Box]

IMAGE_KEYS = {"background", "description", "elements", "shapes"}
ELEMENT_KEYS = {"role", "emoji", "x", "bottom", "height", "head", "mirror", "rotate"}
SHAPE_KEYS = {"kind", "box", "xy", "text", "size", "fill", "outline", "width", "role", "over"}
SHAPE_KINDS = ("rect", "ellipse", "line", "polygon", "text")


def _fail(where: str, message: str) -> SystemExit:
    return SystemExit(f"{where}: {message}")


def _colour(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return ImageColor.getrgb(value)
        except ValueError:
            raise _fail(where, f"unknown colour {value!r}") from None
    if isinstance(value, list) and len(value) in (3, 4) and all(isinstance(v, int) for v in value):
        return tuple(value)
    raise _fail(where, f"a colour is [r, g, b] or a name, not {value!r}")


def _points(value: Any, where: str, *, count: int | None = None) -> list[int]:
    flat = [v for pair in value for v in pair] if value and isinstance(value[0], list) else value
    ok = isinstance(flat, list) and len(flat) >= 2 and len(flat) % 2 == 0
    if not ok or not all(isinstance(v, (int, float)) for v in flat):
        raise _fail(where, f"expected a list of x, y coordinates, got {value!r}")
    if count is not None and len(flat) != count:
        raise _fail(where, f"expected {count} numbers, got {value!r}")
    return [round(v) for v in flat]


def _union(a: Box | None, b: Box) -> Box:
    if a is None:
        return b
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _clip(box: Box, where: str) -> Box:
    clipped = [
        max(0, box[0]),
        max(0, box[1]),
        min(SCENE_SIZE[0], box[2]),
        min(SCENE_SIZE[1], box[3]),
    ]
    if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
        raise _fail(where, f"lies entirely outside the {SCENE_SIZE[0]}x{SCENE_SIZE[1]} picture")
    return clipped


def _draw_shape(draw: ImageDraw.ImageDraw, shape: dict[str, Any], where: str) -> Box:
    """Draw one shape and return the box of its ink."""
    unknown = set(shape) - SHAPE_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (known: {sorted(SHAPE_KEYS)})")
    kind = shape.get("kind")
    fill = _colour(shape.get("fill"), where)
    outline = _colour(shape.get("outline"), where)
    width = int(shape.get("width", 3 if kind == "line" else 1))
    if kind in ("rect", "ellipse"):
        box = _points(shape.get("box"), where, count=4)
        if box[2] < box[0] or box[3] < box[1]:
            raise _fail(where, f"box must be [x0, y0, x1, y1] with x0 <= x1, y0 <= y1, got {box}")
        paint = draw.rectangle if kind == "rect" else draw.ellipse
        paint(box, fill=fill, outline=outline, width=width)
        return [box[0], box[1], box[2] + 1, box[3] + 1]
    if kind in ("line", "polygon"):
        xy = _points(shape.get("xy"), where)
        if kind == "line":
            draw.line(xy, fill=fill or (0, 0, 0), width=width, joint="curve")
            half = (width + 1) // 2
        else:
            draw.polygon(xy, fill=fill, outline=outline, width=width)
            half = 1
        xs, ys = xy[0::2], xy[1::2]
        return [min(xs) - half, min(ys) - half, max(xs) + half + 1, max(ys) + half + 1]
    if kind == "text":
        x, y = _points(shape.get("xy"), where, count=2)
        text = shape.get("text")
        if not isinstance(text, str) or not text:
            raise _fail(where, "a text shape needs a non-empty text")
        font = ImageFont.truetype(str(TEXT_FONT), int(shape.get("size", 20)))
        draw.text((x, y), text, font=font, fill=fill or (0, 0, 0))
        return list(draw.textbbox((x, y), text, font=font))
    raise _fail(where, f"unknown shape kind {kind!r} (known: {', '.join(SHAPE_KINDS)})")


def _sprite(element: dict[str, Any], where: str) -> Image.Image:
    unknown = set(element) - ELEMENT_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (known: {sorted(ELEMENT_KEYS)})")
    missing = [key for key in ("role", "emoji", "x", "bottom", "height") if key not in element]
    if missing:
        raise _fail(where, f"missing {', '.join(missing)}")
    height = int(element["height"])
    if not 4 <= height <= 2 * SCENE_SIZE[1]:
        raise _fail(where, f"height {height} is out of range")
    try:
        if element.get("head"):
            sprite = figure_with_head(str(element["emoji"]), str(element["head"]), height)
            width = max(1, round(sprite.width * height / sprite.height))
            sprite = sprite.resize((width, height), Image.Resampling.LANCZOS)
        else:
            sprite = glyph(str(element["emoji"]), height)
    except MissingGlyph as error:
        raise _fail(where, str(error)) from None
    if element.get("mirror"):
        sprite = sprite.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if element.get("rotate"):
        sprite = sprite.rotate(
            float(element["rotate"]), expand=True, resample=Image.Resampling.BICUBIC
        )
        bbox = sprite.getbbox()
        if bbox:
            sprite = sprite.crop(bbox)
    return sprite


def render_image(spec: dict[str, Any], where: str) -> tuple[Image.Image, Layout]:
    """Draw one image of a scenario; return it (RGB) and the box of every role's ink."""
    if not isinstance(spec, dict):
        raise _fail(where, "an image is a mapping with background, description, elements, shapes")
    unknown = set(spec) - IMAGE_KEYS
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (known: {sorted(IMAGE_KEYS)})")
    name = spec.get("background")
    if name not in BACKGROUNDS:
        raise _fail(where, f"unknown background {name!r} (known: {', '.join(BACKGROUNDS)})")
    scene = BACKGROUNDS[name]()
    draw = ImageDraw.Draw(scene)
    layout: dict[str, Box] = {}

    def record(role: Any, box: Box, at: str) -> None:
        if role is None:
            return
        if not isinstance(role, str) or not role:
            raise _fail(at, f"a role is a non-empty name, got {role!r}")
        layout[role] = _union(layout.get(role), _clip(box, at))

    shapes = spec.get("shapes") or []
    for over in (False, True):
        if over:
            for index, element in enumerate(spec.get("elements") or []):
                at = (
                    f"{where} element {element.get('role', index)!r}"
                    if isinstance(element, dict)
                    else where
                )
                if not isinstance(element, dict):
                    raise _fail(at, f"element {index} is not a mapping")
                sprite = _sprite(element, at)
                left = round(element["x"]) - sprite.width // 2
                top = round(element["bottom"]) - sprite.height
                # paste with the sprite as its own mask: on an opaque scene it blends as
                # alpha_composite does, and unlike it accepts a sprite that hangs off the edge.
                scene.paste(sprite, (left, top), sprite)
                ink = sprite.getbbox() or (0, 0, sprite.width, sprite.height)
                record(
                    element["role"], [left + ink[0], top + ink[1], left + ink[2], top + ink[3]], at
                )
        for index, shape in enumerate(shapes):
            if not isinstance(shape, dict):
                raise _fail(f"{where} shape {index}", "a shape is a mapping")
            if bool(shape.get("over")) != over:
                continue
            at = f"{where} shape {shape.get('role', index)!r}"
            record(shape.get("role"), _draw_shape(draw, shape, at), at)
    return scene.convert("RGB"), layout


def save_png(image: Image.Image, path: Path) -> None:
    """Save as a 256-colour palette PNG: emoji scenes have few colours, and the files stay small."""
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def render_source(source: Path, out_dir: Path, only: set[str] | None = None) -> dict[str, Layout]:
    """Draw every image of a writer's source file into ``out_dir``; return the layout by file name."""
    data = load_source(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    layouts: dict[str, Layout] = {}
    for index, scenario in enumerate(data["scenarios"]):
        sid = scenario.get("id") if isinstance(scenario, dict) else None
        if not isinstance(sid, str) or not sid:
            raise SystemExit(f"{source}: scenario {index} has no id")
        if only and sid not in only:
            continue
        images = scenario.get("images")
        if not isinstance(images, dict) or not images or set(images) - {"A", "B"}:
            raise SystemExit(f"{sid}: 'images' must map A (and B) to image specs")
        for key in sorted(images):
            image, layout = render_image(images[key], f"{sid} image {key}")
            name = f"{sid}_{key}.png"
            save_png(image, out_dir / name)
            layouts[name] = layout
    return layouts


def layout_json(layouts: dict[str, Layout]) -> str:
    """The layout as JSON text with one line per role, sorted, so that diffs stay readable."""
    text = json.dumps(layouts, indent=1, sort_keys=True)
    return (
        re.sub(r"\[\s+(-?\d+),\s+(-?\d+),\s+(-?\d+),\s+(-?\d+)\s+\]", r"[\1, \2, \3, \4]", text)
        + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="a writer's YAML file: draw its scenes")
    parser.add_argument("--out", type=Path, help="folder for --source's PNGs and layout.json")
    parser.add_argument(
        "--scenario", action="append", help="with --source: only this scenario (repeatable)"
    )
    parser.add_argument(
        "--v1", choices=("all", "scenes", "photos"), help="rebuild v1's images into images/"
    )
    parser.add_argument(
        "--list-backgrounds", action="store_true", help="print the background names"
    )
    args = parser.parse_args(argv)
    if args.list_backgrounds:
        print("\n".join(f"{name}: {make.__doc__}" for name, make in BACKGROUNDS.items()))
        return
    if args.source:
        if args.out is None:
            parser.error("--source needs --out")
        layouts = render_source(
            args.source, args.out, set(args.scenario) if args.scenario else None
        )
        (args.out / "layout.json").write_text(layout_json(layouts))
        print(f"wrote {len(layouts)} images and layout.json to {args.out}")
        return
    if args.v1:
        IMAGES_DIR.mkdir(exist_ok=True)
        if args.v1 in ("all", "scenes"):
            v1_scenes.write_scenes(IMAGES_DIR)
        if args.v1 in ("all", "photos"):
            v1_scenes.write_photos(IMAGES_DIR)
        return
    parser.error("give --source FILE --out DIR, or --v1")


if __name__ == "__main__":
    main()
