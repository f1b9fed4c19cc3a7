"""Drawing on pixels with Pillow: fonts, text, rotated text, a colour map and a `Sketch` that lays
things out first and draws them on a canvas just large enough to hold them.

No matplotlib: a run's pictures cost milliseconds instead of a second. The font is DejaVu Sans
(matplotlib's, found without importing matplotlib, or the system's), else Pillow's own scalable
font (Pillow >= 10.1 with FreeType), else Pillow's small bitmap font.
"""
from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Font = Any  # ImageFont.FreeTypeFont, or ImageFont.ImageFont (the bitmap fallback)
Colour = tuple[int, int, int]
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
SYSTEM_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf", "/Library/Fonts/DejaVuSans.ttf")
# matplotlib's "Blues" (ColorBrewer's 9 blues, linearly interpolated), lightest to darkest
BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c",
         "#08306b")


def _font_files() -> Iterator[Path]:
    spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        yield Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    yield from map(Path, SYSTEM_FONTS)


@functools.cache
def font(size: int) -> Font:
    """A sans-serif font `size` pixels high (the bitmap fallback has one size)."""
    for path in _font_files():
        if path.is_file():
            try:
                return ImageFont.truetype(str(path), size)
            except (OSError, ImportError):  # not readable, or Pillow without FreeType
                continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1, or no FreeType
        return ImageFont.load_default()


def scalable(f: Font) -> bool:
    return isinstance(f, ImageFont.FreeTypeFont)


def line_height(f: Font) -> int:
    """Pixels from the top of the tallest letter to the bottom of the lowest of one line."""
    if scalable(f):
        ascent, descent = f.getmetrics()
        return ascent + descent
    return f.getbbox("Ag|")[3]


def drawable(text: str, f: Font) -> str:
    """`text` as `f` can draw it: the bitmap font knows Latin-1 only (others become "?")."""
    if scalable(f):
        return text
    return text.replace("\u2026", "...").encode("latin-1", "replace").decode("latin-1")


def text_width(text: str, size: int) -> float:
    """The width of one line of `text` at font size `size`, in pixels."""
    f = font(size)
    return f.getlength(drawable(text, f))


def lines_height(count: int, size: int, spacing: float = 1.15) -> float:
    """The height of `count` lines at font size `size`, `spacing` line heights apart."""
    height = line_height(font(size))
    return height + (count - 1) * height * spacing


def text_mask(text: str, size: int, angle: float = 0) -> Image.Image:
    """`text` as an "L" mask (255: ink) turned `angle` degrees counter-clockwise. Quarter turns
    are exact; other angles are drawn at 3x, turned and reduced, for smooth edges."""
    scale = 1 if angle % 90 == 0 or not scalable(font(size)) else 3
    f = font(size * scale)
    text = drawable(text, f)
    mask = Image.new("L", (math.ceil(f.getlength(text)) + scale, line_height(f)), 0)
    ImageDraw.Draw(mask).text((0, 0), text, font=f, fill=255)
    if angle % 360 == 0:
        return mask
    if angle % 90 == 0:
        turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
                270: Image.Transpose.ROTATE_270}[int(angle % 360)]
        return mask.transpose(turn)
    turned = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    return turned.reduce(scale)


def colour_map(values: np.ndarray, colours: tuple[str, ...] = BLUES) -> np.ndarray:
    """`values` in [0, 1] (any shape) as uint8 RGB (shape + (3,)), through `colours` spaced
    evenly and interpolated linearly (256 levels, as matplotlib's colour maps)."""
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], np.float64)
    levels = np.linspace(0, 1, 256)
    positions = np.linspace(0, 1, len(colours))
    table = np.stack([np.interp(levels, positions, anchors[:, k]) for k in range(3)], 1)
    index = np.rint(np.clip(values, 0, 1) * 255).astype(np.intp)
    return np.rint(table).astype(np.uint8)[index]


class Sketch:
    """Things placed at pixel coordinates (any origin, negative included), then drawn by
    `picture` on a white canvas that holds all of them plus a margin."""

    def __init__(self) -> None:
        self.items: list[tuple[str, tuple[float, float], Any]] = []
        self.box = [math.inf, math.inf, -math.inf, -math.inf]  # left, top, right, bottom

    def reserve(self, left: float, top: float, right: float, bottom: float) -> None:
        """Make the canvas hold this box (left, top, right, bottom), drawn or not."""
        self.box = [min(self.box[0], left), min(self.box[1], top),
                    max(self.box[2], right), max(self.box[3], bottom)]

    def text(self, x: float, y: float, text: str, size: int, fill: Colour = BLACK,
             anchor: str = "lt") -> tuple[float, float, float, float]:
        """One line of `text`; `anchor`: horizontal l/m/r and vertical t/m/b of its box at
        (x, y). Returns the box (left, top, right, bottom)."""
        f = font(size)
        text = drawable(text, f)
        width, height = f.getlength(text), line_height(f)
        left = x - width * "lmr".index(anchor[0]) / 2
        top = y - height * "tmb".index(anchor[1]) / 2
        self.items.append(("text", (left, top), (text, f, fill)))
        self.reserve(left, top, left + width, top + height)
        return left, top, left + width, top + height

    def lines(self, x: float, y: float, lines: list[str], size: int, fill: Colour = BLACK,
              spacing: float = 1.15) -> float:
        """Lines centred on `x`, the first one's top at `y`; returns the bottom of the last."""
        step = line_height(font(size)) * spacing
        bottom = y
        for k, line in enumerate(lines):
            bottom = self.text(x, y + k * step, line, size, fill, "mt")[3]
        return bottom

    def turned(self, x: float, y: float, text: str, size: int, angle: float,
               fill: Colour = BLACK, anchor: str = "mm") -> None:
        """One line of `text` turned `angle` degrees counter-clockwise about the point of its
        box that `anchor` names (as for `text`), which lands at (x, y)."""
        f = font(size)
        width, height = f.getlength(drawable(text, f)), line_height(f)
        dx = width * ("lmr".index(anchor[0]) - 1) / 2  # the anchor from the box's centre
        dy = height * ("tmb".index(anchor[1]) - 1) / 2
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        mask = text_mask(text, size, angle)
        self.mask(x - mask.width / 2 - (dx * cos + dy * sin),
                  y - mask.height / 2 - (dy * cos - dx * sin), mask, fill)

    def mask(self, x: float, y: float, mask: Image.Image, fill: Colour = BLACK) -> None:
        """An "L" mask painted in `fill`, its top-left corner at (x, y)."""
        self.items.append(("mask", (x, y), (mask, fill)))
        self.reserve(x, y, x + mask.width, y + mask.height)

    def image(self, x: float, y: float, image: Image.Image) -> None:
        self.items.append(("image", (x, y), image))
        self.reserve(x, y, x + image.width, y + image.height)

    def frame(self, left: float, top: float, right: float, bottom: float,
              colour: Colour = BLACK) -> None:
        """A one-pixel outline just outside the box (left, top, right, bottom)."""
        self.items.append(("frame", (left - 1, top - 1), (right, bottom, colour)))
        self.reserve(left - 1, top - 1, right + 1, bottom + 1)

    def line(self, x0: float, y0: float, x1: float, y1: float, colour: Colour = BLACK) -> None:
        self.items.append(("line", (x0, y0), (x1, y1, colour)))
        self.reserve(min(x0, x1), min(y0, y1), max(x0, x1) + 1, max(y0, y1) + 1)

    def picture(self, margin: int = 12) -> Image.Image:
        left, top = math.floor(self.box[0]) - margin, math.floor(self.box[1]) - margin
        size = (math.ceil(self.box[2]) + margin - left, math.ceil(self.box[3]) + margin - top)
        canvas = Image.new("RGB", size, WHITE)
        draw = ImageDraw.Draw(canvas)
        for kind, (x, y), what in self.items:
            x, y = x - left, y - top
            if kind == "text":
                draw.text((x, y), what[0], font=what[1], fill=what[2])
            elif kind == "mask":
                canvas.paste(what[1], (round(x), round(y)), what[0])
            elif kind == "image":
                canvas.paste(what, (round(x), round(y)))
            elif kind == "frame":
                draw.rectangle((round(x), round(y), round(what[0] - left), round(what[1] - top)),
                               outline=what[2])
            else:
                draw.line((round(x), round(y), round(what[0] - left), round(what[1] - top)),
                          fill=what[2])
        return canvas
