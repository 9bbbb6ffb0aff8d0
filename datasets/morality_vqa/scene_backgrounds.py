"""The named backgrounds a scenario's image is drawn on, in plain Pillow shapes (no glyphs).

Every background fills the whole 512x384 scene. Elements are drawn on top by
``compose_scenes.py``; the comment beside each function says where its floor or ground is,
so that a writer knows where to put the feet (``bottom``) of a figure.
This module draws nothing that a question could depend on: what decides an answer is an
element or a shape of the scenario itself, so that it has a recorded place in the layout.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

W, H = 512, 384
RGB = tuple[int, int, int]

SKY = (186, 222, 245)
GRASS = (120, 186, 92)
PAVEMENT = (200, 200, 196)
KERB = (160, 160, 156)
ROAD = (82, 84, 90)
WALL = (233, 221, 196)
WATER = (64, 142, 204)
WOOD = (160, 120, 80)
DARK_WOOD = (120, 85, 55)
SAND = (236, 214, 160)
WHITE = (245, 245, 245)


def _canvas(colour: RGB) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    scene = Image.new("RGBA", (W, H), colour + (255,))
    return scene, ImageDraw.Draw(scene)


def _tree(draw: ImageDraw.ImageDraw, x: int, ground: int, size: int = 70) -> None:
    draw.rectangle((x - size // 8, ground - size, x + size // 8, ground), fill=DARK_WOOD)
    draw.ellipse(
        (x - size // 2 - 10, ground - 2 * size, x + size // 2 + 10, ground - size + 20),
        fill=(70, 140, 70),
    )


def _window(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], glass: RGB = SKY) -> None:
    draw.rectangle(box, fill=glass, outline=WHITE, width=5)
    x0, y0, x1, y1 = box
    draw.line(((x0 + x1) // 2, y0, (x0 + x1) // 2, y1), fill=WHITE, width=4)


def _buildings(draw: ImageDraw.ImageDraw, base: int, *, night: bool = False) -> None:
    colours = ((205, 170, 140), (170, 190, 210), (215, 200, 170), (190, 160, 160), (180, 200, 170))
    if night:
        colours = ((50, 50, 70), (60, 55, 75), (45, 50, 65), (55, 60, 80), (50, 45, 60))
    for i, left in enumerate(range(-10, W, 105)):
        top = 40 + (i * 37) % 60
        draw.rectangle((left, top, left + 100, base), fill=colours[i % len(colours)])
        for wy in range(top + 15, base - 30, 38):
            for wx in (left + 15, left + 58):
                lit = night and (wx + wy) % 3 == 0
                glass = (250, 220, 120) if lit else ((35, 35, 50) if night else (150, 185, 215))
                draw.rectangle((wx, wy, wx + 26, wy + 22), fill=glass)


def street() -> Image.Image:
    """Buildings; pavement from y=200 to 300 (stand figures here); kerb; road below y=300."""
    scene, draw = _canvas(SKY)
    _buildings(draw, 200)
    draw.rectangle((0, 200, W, 300), fill=PAVEMENT)
    draw.rectangle((0, 300, W, 310), fill=KERB)
    draw.rectangle((0, 310, W, H), fill=ROAD)
    for x in range(10, W, 120):
        draw.rectangle((x, 345, x + 60, 351), fill=WHITE)
    return scene


def crossing() -> Image.Image:
    """Pavement from y=170 to 235 (stand figures here); road below with a zebra crossing at x=170..400."""
    scene, draw = _canvas(SKY)
    _buildings(draw, 170)
    draw.rectangle((0, 170, W, 235), fill=PAVEMENT)
    draw.rectangle((0, 235, W, 243), fill=KERB)
    draw.rectangle((0, 243, W, H), fill=ROAD)
    for x in range(170, 400, 46):
        draw.rectangle((x, 248, x + 26, H), fill=WHITE)
    for x in (140, 430):  # Belisha beacons at the ends of the crossing
        draw.rectangle((x - 4, 90, x + 4, 235), fill=(30, 30, 30))
        for y in range(100, 235, 24):
            draw.rectangle((x - 4, y, x + 4, y + 12), fill=WHITE)
        draw.ellipse((x - 13, 66, x + 13, 92), fill=(245, 160, 30))
    return scene


def park() -> Image.Image:
    """Grass from y=170; a path from y=280 to 330; trees at the edges."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 170, W, H), fill=GRASS)
    draw.rectangle((0, 280, W, 330), fill=(214, 196, 160))
    for x in (35, 478):
        _tree(draw, x, 250, 80)
    _tree(draw, 250, 175, 40)
    return scene


def playground() -> Image.Image:
    """Grass from y=180; a sand pit in front; a slide at the left edge, swings at the right edge."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 180, W, H), fill=GRASS)
    draw.ellipse((120, 300, 400, 380), fill=SAND)
    # slide (left edge)
    draw.rectangle((20, 150, 28, 300), fill=(200, 60, 60))
    draw.rectangle((52, 150, 60, 300), fill=(200, 60, 60))
    draw.polygon(((60, 150), (70, 150), (130, 300), (110, 300)), fill=(250, 200, 40))
    for y in range(165, 300, 22):
        draw.line((20, y, 60, y), fill=(200, 60, 60), width=4)
    # swings (right edge)
    draw.line((420, 300, 440, 140), fill=(60, 90, 170), width=7)
    draw.line((500, 300, 480, 140), fill=(60, 90, 170), width=7)
    draw.line((430, 140, 505, 140), fill=(60, 90, 170), width=7)
    draw.line((455, 140, 455, 250), fill=(90, 90, 90), width=2)
    draw.line((480, 140, 480, 250), fill=(90, 90, 90), width=2)
    draw.rectangle((450, 250, 485, 257), fill=(140, 95, 55))
    return scene


def garden() -> Image.Image:
    """A wooden fence at the back (y=120..220); lawn from y=220; a flower bed along the fence."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 200, W, H), fill=GRASS)
    for x in range(0, W, 32):
        draw.polygon(
            ((x + 2, 130), (x + 15, 116), (x + 28, 130), (x + 28, 222), (x + 2, 222)),
            fill=(180, 140, 95),
            outline=(140, 100, 65),
        )
    draw.rectangle((0, 150, W, 158), fill=(140, 100, 65))
    draw.rectangle((0, 222, W, 250), fill=(120, 85, 60))
    for x in range(12, W, 40):
        draw.ellipse(
            (x, 214, x + 14, 228), fill=((230, 80, 120), (250, 200, 60), (170, 90, 220))[x % 3]
        )
    return scene


def room() -> Image.Image:
    """Wall down to y=280 with a window and a picture; wooden floor from y=280."""
    scene, draw = _canvas(WALL)
    draw.rectangle((0, 280, W, H), fill=(176, 130, 90))
    for y in range(295, H, 22):
        draw.line((0, y, W, y), fill=(150, 108, 72), width=2)
    draw.rectangle((0, 272, W, 280), fill=WHITE)
    _window(draw, (20, 60, 110, 180))
    draw.rectangle((410, 70, 490, 130), fill=(120, 150, 110), outline=(110, 80, 50), width=6)
    return scene


def kitchen() -> Image.Image:
    """Tiled wall; a worktop along the back at y=200 with cupboards below it; floor from y=290."""
    scene, draw = _canvas((240, 240, 232))
    for y in range(0, 200, 24):
        draw.line((0, y, W, y), fill=(215, 215, 205), width=2)
    for x in range(0, W, 24):
        draw.line((x, 0, x, 200), fill=(215, 215, 205), width=2)
    for x in (20, 380):
        draw.rectangle((x, 20, x + 110, 90), fill=(110, 150, 170), outline=WHITE, width=3)
    draw.rectangle((0, 290, W, H), fill=(200, 190, 170))
    for x in range(0, W, 40):
        draw.line((x, 290, x, H), fill=(180, 170, 150), width=2)
    draw.rectangle((0, 200, W, 212), fill=(90, 90, 95))  # worktop
    for x in range(0, W, 85):
        draw.rectangle(
            (x + 2, 212, x + 82, 288), fill=(150, 180, 160), outline=(110, 140, 120), width=2
        )
        draw.rectangle((x + 36, 222, x + 48, 226), fill=(80, 80, 80))
    return scene


def classroom() -> Image.Image:
    """Wall with a blackboard (x=120..390, y=40..170) and a clock; floor from y=270."""
    scene, draw = _canvas((226, 232, 210))
    draw.rectangle((0, 270, W, H), fill=(170, 140, 105))
    draw.rectangle((115, 35, 395, 175), fill=(140, 100, 60))
    draw.rectangle((122, 42, 388, 168), fill=(40, 80, 60))
    draw.line((140, 70, 220, 70), fill=(230, 230, 230), width=3)
    draw.line((140, 95, 260, 95), fill=(230, 230, 230), width=3)
    draw.ellipse((440, 40, 490, 90), fill=WHITE, outline=(40, 40, 40), width=3)
    draw.line((465, 65, 465, 48), fill=(40, 40, 40), width=3)
    draw.line((465, 65, 478, 65), fill=(40, 40, 40), width=3)
    _window(draw, (10, 60, 80, 180))
    return scene


def office() -> Image.Image:
    """Grey wall with a blinds window and a whiteboard; carpet from y=280; a filing cabinet at the right edge."""
    scene, draw = _canvas((215, 218, 222))
    draw.rectangle((0, 280, W, H), fill=(110, 120, 135))
    draw.rectangle((20, 40, 160, 170), fill=(180, 210, 235))
    for y in range(44, 170, 10):
        draw.line((20, y, 160, y), fill=(235, 235, 235), width=4)
    draw.rectangle((230, 50, 400, 150), fill=WHITE, outline=(150, 150, 150), width=4)
    draw.rectangle((455, 170, 512, 282), fill=(150, 155, 160), outline=(110, 110, 115), width=2)
    for y in (200, 240):
        draw.rectangle((475, y, 495, y + 5), fill=(80, 80, 80))
    return scene


def library() -> Image.Image:
    """Bookshelves along the back down to y=260; floor from y=260."""
    scene, draw = _canvas((200, 180, 150))
    draw.rectangle((0, 260, W, H), fill=(140, 60, 55))
    spines = (
        (170, 50, 50),
        (50, 90, 160),
        (60, 130, 70),
        (200, 160, 60),
        (110, 70, 130),
        (230, 230, 220),
    )
    for top in range(20, 250, 60):
        draw.rectangle((0, top + 52, W, top + 60), fill=DARK_WOOD)
        x, i = 0, top
        while x < W:
            width = 9 + (i * 7) % 8
            height = 38 + (i * 5) % 12
            draw.rectangle(
                (x, top + 52 - height, x + width - 1, top + 52),
                fill=spines[(i * 5 + i // 7) % len(spines)],
            )
            x += width
            i += 1
    return scene


def shop() -> Image.Image:
    """Shelves of goods on the back wall down to y=230; floor from y=230; a counter at x>=330 (top y=230)."""
    scene, draw = _canvas((230, 225, 215))
    draw.rectangle((0, 230, W, H), fill=(190, 190, 185))
    for x in range(0, W, 32):
        draw.line((x, 230, x, H), fill=(175, 175, 170), width=1)
    goods = ((220, 80, 60), (60, 140, 200), (240, 200, 60), (90, 170, 90), (200, 120, 180))
    for top in (40, 100, 160):
        draw.rectangle((0, top + 45, W, top + 52), fill=(150, 150, 155))
        for i, x in enumerate(range(6, W - 10, 26)):
            draw.rectangle((x, top + 18 + (i % 3) * 4, x + 18, top + 45), fill=goods[(i + top) % 5])
    draw.rectangle((330, 230, W, 330), fill=(150, 105, 70), outline=(110, 75, 45), width=3)
    draw.rectangle((322, 222, W, 234), fill=(120, 85, 55))
    return scene


def cafe() -> Image.Image:
    """Wall with a menu board and a counter with a coffee machine at the back (top y=200); tiled floor from y=260."""
    scene, draw = _canvas((240, 225, 200))
    draw.rectangle((0, 260, W, H), fill=WHITE)
    for x in range(0, W, 32):
        for y in range(260, H, 32):
            if (x // 32 + y // 32) % 2:
                draw.rectangle((x, y, x + 31, y + 31), fill=(60, 60, 60))
    draw.rectangle((180, 30, 330, 110), fill=(40, 40, 40), outline=(120, 85, 55), width=5)
    for y in (50, 70, 90):
        draw.line((195, y, 300, y), fill=(230, 230, 230), width=2)
    draw.rectangle((0, 200, W, 260), fill=(120, 80, 55))
    draw.rectangle((0, 192, W, 202), fill=(90, 60, 40))
    draw.rectangle((30, 140, 90, 192), fill=(170, 170, 175), outline=(90, 90, 95), width=3)
    _window(draw, (400, 40, 500, 150))
    return scene


def bus() -> Image.Image:
    """Bus interior: windows (y=55..165), a handrail at y=40, poles at x=30 and 482; aisle floor from y=300."""
    scene, draw = _canvas((205, 210, 215))
    draw.rectangle((0, 300, W, H), fill=(90, 95, 100))
    for x in range(0, W, 18):
        draw.line((x, 300, x + 10, H), fill=(80, 85, 90), width=1)
    for x in range(10, W, 125):
        draw.rounded_rectangle(
            (x, 55, x + 110, 165), radius=10, fill=(170, 205, 235), outline=(120, 120, 125), width=4
        )
    draw.line((0, 40, W, 40), fill=(230, 190, 40), width=8)
    for x in (30, 482):
        draw.line((x, 40, x, 300), fill=(230, 190, 40), width=8)
    draw.rectangle((0, 180, W, 190), fill=(60, 100, 160))  # seat-back rail along the wall
    return scene


def train_platform() -> Image.Image:
    """A train at the back (y=90..235); platform from y=235 with a yellow line at y=250."""
    scene, draw = _canvas((190, 195, 205))
    draw.rectangle((0, 20, W, 40), fill=(120, 120, 130))  # canopy
    draw.rectangle((0, 90, W, 235), fill=(40, 90, 160))
    draw.rectangle((0, 205, W, 215), fill=(230, 190, 40))
    for x in range(15, W, 100):
        draw.rectangle((x, 110, x + 60, 170), fill=(180, 210, 235), outline=(30, 60, 110), width=3)
    for x in (160, 420):
        draw.rectangle((x, 105, x + 48, 232), fill=(70, 110, 170), outline=(30, 60, 110), width=3)
    draw.rectangle((0, 235, W, H), fill=(170, 170, 165))
    draw.rectangle((0, 248, W, 256), fill=(245, 210, 40))
    return scene


def car_park() -> Image.Image:
    """Tarmac from y=150 with white bay lines; a wall and sky behind."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 100, W, 150), fill=(170, 160, 150))
    draw.rectangle((0, 150, W, H), fill=(100, 102, 108))
    for x in range(0, W + 60, 110):
        draw.line((x, 160, x - 40, H), fill=WHITE, width=5)
    draw.line((0, 160, W, 160), fill=WHITE, width=5)
    return scene


def beach() -> Image.Image:
    """Sky; sea from y=140 to 210; sand from y=210."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 140, W, 215), fill=WATER)
    for x in range(0, W, 60):
        draw.arc((x, 150, x + 40, 165), 200, 340, fill=(200, 230, 250), width=3)
    draw.rectangle((0, 210, W, H), fill=SAND)
    draw.ellipse((430, 20, 490, 80), fill=(250, 220, 80))
    return scene


def lake() -> Image.Image:
    """Far shore with trees; water from y=150; a wooden jetty at the bottom left (x<200, y>=290)."""
    scene, draw = _canvas(SKY)
    draw.rectangle((0, 120, W, 150), fill=(100, 160, 90))
    for x in range(20, W, 70):
        draw.ellipse((x - 20, 95, x + 20, 135), fill=(60, 120, 60))
    draw.rectangle((0, 150, W, H), fill=WATER)
    for x, y in ((260, 200), (420, 230), (300, 330), (460, 300)):
        draw.arc((x - 30, y - 8, x + 30, y + 8), 200, 340, fill=(200, 230, 250), width=3)
    draw.rectangle((0, 290, 200, H), fill=WOOD)
    for x in range(0, 200, 40):
        draw.line((x, 290, x, H), fill=DARK_WOOD, width=3)
    return scene


def night_street() -> Image.Image:
    """Night sky with a moon; dark buildings with some lit windows; pavement from y=220; road below y=310."""
    scene, draw = _canvas((20, 24, 50))
    draw.ellipse((440, 20, 480, 60), fill=(240, 240, 210))
    _buildings(draw, 220, night=True)
    draw.rectangle((0, 220, W, 310), fill=(80, 80, 85))
    draw.rectangle((0, 310, W, 318), fill=(60, 60, 64))
    draw.rectangle((0, 318, W, H), fill=(35, 36, 42))
    for x in (30, 482):
        draw.line((x, 90, x, 300), fill=(40, 40, 45), width=6)
        draw.ellipse((x - 45, 285, x + 45, 308), fill=(125, 120, 95))  # pool of lamplight
        draw.ellipse((x - 12, 78, x + 12, 100), fill=(255, 230, 140))
    return scene


def hospital_corridor() -> Image.Image:
    """Pale green wall with doors and a handrail; a red-cross sign; floor from y=280."""
    scene, draw = _canvas((205, 228, 215))
    draw.rectangle((0, 280, W, H), fill=(220, 220, 210))
    for x in range(0, W, 48):
        draw.line((x, 280, x, H), fill=(200, 200, 192), width=1)
    for x in (20, 420):
        draw.rectangle((x, 90, x + 75, 280), fill=(160, 190, 200), outline=(110, 130, 140), width=3)
        draw.rectangle((x + 15, 110, x + 60, 150), fill=(220, 235, 240))
    draw.line((0, 200, W, 200), fill=(150, 150, 150), width=6)
    draw.rectangle((228, 30, 284, 86), fill=WHITE, outline=(180, 180, 180), width=2)
    draw.rectangle((250, 38, 262, 78), fill=(210, 40, 40))
    draw.rectangle((236, 52, 276, 64), fill=(210, 40, 40))
    return scene


BACKGROUNDS: dict[str, Callable[[], Image.Image]] = {
    make.__name__: make
    for make in (
        street,
        crossing,
        park,
        playground,
        garden,
        room,
        kitchen,
        classroom,
        office,
        library,
        shop,
        cafe,
        bus,
        train_platform,
        car_park,
        beach,
        lake,
        night_street,
        hospital_corridor,
    )
}
