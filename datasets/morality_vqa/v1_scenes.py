"""The hand-drawn scenes and the sample photographs of dataset v1, kept so that they rebuild.

Dataset v2 draws its scenes from the declarative YAML sources instead (``compose_scenes.py
--source``); these functions are what made v1's ``images/`` and stay byte-for-byte the same.
Photographs are copied from the wheels of scikit-image, matplotlib and scikit-learn and shrunk
to at most 512 px a side.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image, ImageDraw
from scene_glyphs import figure_with_head, glyph, put

SCENE_SIZE = (512, 384)
MAX_PHOTO_SIDE = 512

SKY = (186, 222, 245)
GRASS = (120, 186, 92)
PAVEMENT = (200, 200, 196)
ROAD = (82, 84, 90)
WALL = (233, 221, 196)
WATER = (64, 142, 204)


def blank(sky: tuple[int, int, int], ground: tuple[int, int, int], horizon: int) -> Image.Image:
    scene = Image.new("RGBA", SCENE_SIZE, sky + (255,))
    ImageDraw.Draw(scene).rectangle((0, horizon, SCENE_SIZE[0], SCENE_SIZE[1]), fill=ground)
    return scene


def old_lady_street() -> Image.Image:
    """An elderly woman with a walking stick waits at the edge of a zebra crossing."""
    scene = blank(SKY, PAVEMENT, 150)
    draw = ImageDraw.Draw(scene)
    for left, top, colour in (
        (10, 40, (205, 170, 140)),
        (120, 70, (170, 190, 210)),
        (400, 30, (215, 200, 170)),
    ):
        draw.rectangle((left, top, left + 100, 150), fill=colour)
    draw.rectangle((190, 150, 512, 330), fill=ROAD)
    for stripe_top in range(160, 330, 34):
        draw.rectangle((230, stripe_top, 470, stripe_top + 18), fill=(245, 245, 245))
    put(scene, glyph("🚦", 110), 200, 150)
    put(scene, glyph("🚗", 60), 490, 230)
    lady = figure_with_head("🧍\u200d♀️", "👵", 190)
    # A walking stick: a brown line from her hand to the ground.
    draw.line((142, 268, 156, 352), fill=(110, 70, 40), width=6)
    put(scene, lady, 120, 352)
    return scene


def dropped_purse() -> Image.Image:
    """A purse lies on the pavement behind a person who walks away without noticing."""
    scene = blank(SKY, PAVEMENT, 170)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((0, 90, 512, 170), fill=(190, 150, 120))
    for left in range(20, 512, 90):
        draw.rectangle((left, 110, left + 50, 150), fill=(120, 160, 190))
    draw.line((0, 300, 512, 300), fill=(170, 170, 166), width=3)
    put(scene, glyph("🚶", 200, mirror=True), 400, 330)
    put(scene, glyph("👛", 60), 130, 340)
    return scene


def crying_child() -> Image.Image:
    """A small child stands alone by a park bench and cries over a dropped ice cream."""
    scene = blank(SKY, GRASS, 200)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((0, 270, 512, 320), fill=PAVEMENT)
    for x in (40, 470):
        put(scene, glyph("🌳", 190), x, 230)
    # A bench gives the scale that shows the figure is a small child.
    draw.rectangle((60, 200, 200, 212), fill=(140, 95, 55))
    draw.rectangle((60, 225, 200, 237), fill=(140, 95, 55))
    for leg in (70, 185):
        draw.rectangle((leg, 237, leg + 8, 290), fill=(90, 60, 35))
    put(scene, figure_with_head("🧍", "😭", 105), 270, 300)
    draw.ellipse((318, 292, 372, 310), fill=(250, 240, 215))
    put(scene, glyph("🍦", 55).rotate(120, expand=True), 350, 312)
    return scene


def wheelchair_stairs() -> Image.Image:
    """A wheelchair user waits at the foot of a flight of stairs up to a door; no ramp."""
    scene = blank(SKY, PAVEMENT, 330)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((230, 40, 512, 330), fill=WALL)
    draw.rectangle((400, 70, 470, 180), fill=(120, 80, 50))
    for step in range(6):
        top = 180 + step * 25
        draw.rectangle(
            (330 - step * 22, top, 512, top + 25), fill=(170, 170, 170), outline=(120, 120, 120)
        )
    put(scene, glyph("🧑\u200d🦽", 150, mirror=True), 120, 340)
    return scene


def house_fire() -> Image.Image:
    """Flames and smoke come out of a house; a person watches from the street."""
    scene = blank((150, 160, 175), GRASS, 290)
    draw = ImageDraw.Draw(scene)
    for cx, cy, r in ((250, 60, 45), (300, 35, 35), (200, 40, 30)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(95, 95, 100))
    put(scene, glyph("🏠", 230), 256, 320)
    put(scene, glyph("🔥", 110), 220, 190)
    put(scene, glyph("🔥", 90), 300, 175)
    put(scene, glyph("🔥", 60), 310, 275)
    put(scene, glyph("🏠", 150), 470, 320)
    put(scene, glyph("🧍", 110), 70, 370)
    return scene


def bus_queue() -> Image.Image:
    """Five people wait in a line at a bus stop."""
    scene = blank(SKY, PAVEMENT, 250)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((0, 310, 512, 384), fill=ROAD)
    put(scene, glyph("🚏", 170), 60, 300)
    for index, person in enumerate(("🧍\u200d♀️", "🧍", "🧍\u200d♂️", "🧍\u200d♀️", "🧍")):
        put(scene, glyph(person, 130, mirror=True), 140 + index * 62, 300)
    put(scene, glyph("🚌", 90), 440, 384)
    return scene


def park_litter() -> Image.Image:
    """Cups and wrappers lie on the grass of a park a few steps from a bin."""
    scene = blank(SKY, GRASS, 190)
    for x in (60, 250, 450):
        put(scene, glyph("🌳", 170), x, 220)
    put(scene, glyph("🗑\ufe0f", 110), 400, 330)
    put(scene, glyph("🥤", 50).rotate(80, expand=True), 160, 330)
    put(scene, glyph("🥫", 40).rotate(-70, expand=True), 240, 360)
    put(scene, glyph("🍌", 45), 100, 370)
    put(scene, glyph("🍟", 45).rotate(30, expand=True), 300, 300)
    return scene


def thirsty_dog() -> Image.Image:
    """On a hot, sunny day a dog is tied to a post next to an empty bowl."""
    scene = blank((140, 200, 245), (214, 190, 140), 200)
    draw = ImageDraw.Draw(scene)
    put(scene, glyph("☀\ufe0f", 110), 440, 130)
    draw.rectangle((120, 150, 134, 330), fill=(120, 85, 50))
    dog = glyph("🐕", 140)
    put(scene, dog, 260, 330)
    draw.line((134, 250, 215, 250), fill=(60, 60, 60), width=4)
    put(scene, glyph("🥣", 55), 370, 335)
    return scene


def swimmer_in_trouble() -> Image.Image:
    """A swimmer raises an arm for help in deep water; a ring buoy hangs on the jetty."""
    scene = blank(SKY, WATER, 150)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((0, 290, 200, 384), fill=(160, 120, 80))
    for left in range(0, 200, 40):
        draw.line((left, 290, left, 384), fill=(120, 85, 55), width=3)
    swimmer = glyph("🙋", 140)
    put(scene, swimmer, 360, 250)
    # Water covers the swimmer up to the chest, which is what makes the raised arm a call for help.
    draw.rectangle((200, 215, 512, 384), fill=WATER)
    for y in range(225, 384, 30):
        draw.arc((230, y - 10, 300, y + 10), 200, 340, fill=(200, 230, 250), width=3)
        draw.arc((400, y - 5, 470, y + 15), 200, 340, fill=(200, 230, 250), width=3)
    put(scene, glyph("🛟", 80), 90, 285)
    return scene


def parked_bicycle() -> Image.Image:
    """A bicycle stands unlocked against the wall of a house, next to its front door."""
    scene = blank(SKY, PAVEMENT, 300)
    draw = ImageDraw.Draw(scene)
    draw.rectangle((40, 60, 472, 300), fill=WALL)
    draw.polygon(((20, 70), (256, 10), (492, 70)), fill=(170, 80, 60))
    draw.rectangle((330, 150, 400, 300), fill=(60, 110, 150))
    draw.ellipse((386, 222, 394, 230), fill=(230, 200, 80))
    for left in (80, 200):
        draw.rectangle(
            (left, 110, left + 70, 170), fill=(160, 200, 230), outline=(255, 255, 255), width=4
        )
    put(scene, glyph("🚲", 120), 180, 310)
    put(scene, glyph("🪴", 70), 440, 305)
    return scene


SCENES: dict[str, Callable[[], Image.Image]] = {
    "old_lady_street": old_lady_street,
    "dropped_purse": dropped_purse,
    "crying_child": crying_child,
    "wheelchair_stairs": wheelchair_stairs,
    "house_fire": house_fire,
    "bus_queue": bus_queue,
    "park_litter": park_litter,
    "thirsty_dog": thirsty_dog,
    "swimmer_in_trouble": swimmer_in_trouble,
    "parked_bicycle": parked_bicycle,
}

# (output name, package, path inside the package); see provenance.csv for each licence.
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("photographer.jpg", "skimage", "data/camera.png"),
    ("astronaut.jpg", "skimage", "data/astronaut.png"),
    ("cat.jpg", "skimage", "data/chelsea.png"),
    ("coffee.jpg", "skimage", "data/coffee.png"),
    ("rocket.jpg", "skimage", "data/rocket.jpg"),
    ("naval_officer.jpg", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ("pagoda.jpg", "sklearn", "datasets/images/china.jpg"),
    ("dahlia.jpg", "sklearn", "datasets/images/flower.jpg"),
)


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed; pip install it to rebuild the photos")
    return Path(spec.origin).parent / relative


def write_scenes(images_dir: Path, names: Iterable[str] | None = None) -> None:
    for name, make in SCENES.items():
        if names is None or name in names:
            make().convert("RGB").save(images_dir / f"{name}.png", optimize=True)


def write_photos(images_dir: Path, names: Iterable[str] | None = None) -> None:
    for out_name, package, relative in PHOTOS:
        if names is None or out_name in names:
            photo = Image.open(package_file(package, relative)).convert("RGB")
            photo.thumbnail((MAX_PHOTO_SIDE, MAX_PHOTO_SIDE), Image.Resampling.LANCZOS)
            photo.save(images_dir / out_name, quality=88, optimize=True)
