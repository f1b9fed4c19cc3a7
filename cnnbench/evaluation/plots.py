"""The per-run pictures: a normalized confusion matrix and a grid of the worst mistakes.

Drawn with Pillow (`raster`), not matplotlib: both pictures of a 10-class run cost a few
hundredths of a second, import included. Each is an RGB `PIL.Image`; `png_bytes` encodes it
once, and that PNG is both the file and the TensorBoard image.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from PIL import Image

from cnnbench.evaluation.png import png_bytes, read_png
from cnnbench.evaluation.raster import (
    BLACK,
    WHITE,
    Sketch,
    colour_map,
    lines_height,
    text_width,
)

__all__ = ["confusion_matrix_figure", "misclassified_figure", "png_bytes", "read_png", "shares"]

TITLE, HEAD, AXIS, TICK_TEXT = 18, 17, 16, 15  # font sizes, pixels (12/11/11/10 pt at 110 dpi)
TICK = 5  # tick mark length
CELL_TEXT_MAX_CLASSES = 20  # percentages in the cells up to this many classes
BAR_TICKS = (0, 0.01, 0.05, 0.2, 0.5, 1)
MISTAKE_RED = (176, 0, 32)
LONGEST_NAME = 28  # characters of a class name shown; longer ones end in an ellipsis


def shorten(name: object, limit: int = LONGEST_NAME) -> str:
    text = str(name)
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def shares(counts: Sequence[Sequence[int]]) -> np.ndarray:
    """Each row of `counts` as shares of its sum (rows with no images: zeros)."""
    counts = np.asarray(counts, dtype=np.float64)
    rows = counts.sum(1, keepdims=True)
    return np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)


def cell_size(n: int) -> int:
    """Pixels per cell: 68 up to 10 classes (the matrix at least 480 pixels wide), 18 for 100;
    the matrix stays within 1800 pixels."""
    return max(1, min(max(18, math.ceil(480 / n), min(68, round(600 / n + 8))), 1800 // n))


def confusion_matrix_figure(counts: Sequence[Sequence[int]], classes: Sequence[str],
                            title: str = "") -> Image.Image:
    """Rows: true class, normalized to sum to 100%; columns: predicted class. A square-root
    colour scale, so that 1% confusions are visible next to 99% diagonals."""
    norm, n = shares(counts), len(classes)
    cell = cell_size(n)
    side = n * cell
    sketch = Sketch()
    colours = colour_map(np.sqrt(norm))
    sketch.image(0, 0, Image.fromarray(colours).resize((side, side), Image.Resampling.NEAREST))
    sketch.frame(0, 0, side, side)
    if n <= CELL_TEXT_MAX_CLASSES:
        _cell_text(sketch, np.asarray(counts), norm, cell)
    _class_ticks(sketch, [shorten(c) for c in classes], cell)
    _colour_bar(sketch, side + 30, side)
    head = "Confusion matrix: % of each true class (row) predicted as each class (column)"
    lines = [head, title] if title else [head]
    sketch.lines(side / 2, -12 - lines_height(len(lines), TITLE), lines, TITLE)
    return sketch.picture()


def _cell_text(sketch: Sketch, counts: np.ndarray, norm: np.ndarray, cell: int) -> None:
    """The percentage in each cell that holds an image; white on the dark cells."""
    size = 14 if len(norm) <= 12 else 11
    for i, j in zip(*np.nonzero(counts > 0)):
        pct = 100 * norm[i, j]
        text = f"{pct:.0f}" if pct >= 9.95 else f"{pct:.1f}" if pct >= 0.05 else "<.1"
        sketch.text((j + 0.5) * cell, (i + 0.5) * cell, text, size,
                    WHITE if norm[i, j] > 0.5 else BLACK, "mm")


def _class_ticks(sketch: Sketch, names: list[str], cell: int) -> None:
    """Class names beside the rows and under the columns (every `stride`-th one when the cells
    are too small for each), tick marks, and the axis labels."""
    n, side = len(names), len(names) * cell
    stride = math.ceil(12 / cell)
    size = min(TICK_TEXT, max(9, int(0.7 * cell * stride)))
    rotate = max(len(name) for name in names) > 3
    for k in range(0, n, stride):
        centre = (k + 0.5) * cell
        sketch.line(-TICK, centre, -1, centre)
        sketch.line(centre, side, centre, side + TICK - 1)
        sketch.text(-TICK - 4, centre, names[k], size, anchor="rm")
        if rotate:  # 45 degrees, ending at the tick
            sketch.turned(centre + 0.15 * size, side + TICK + 3, names[k], size, 45, anchor="rt")
        else:
            sketch.text(centre, side + TICK + 3, names[k], size, anchor="mt")
    sketch.text(side / 2, sketch.box[3] + 8, "predicted class", AXIS, anchor="mt")
    sketch.turned(sketch.box[0] - 8, side / 2, "true class", AXIS, 90, anchor="mb")


def _colour_bar(sketch: Sketch, left: float, height: int, width: int = 26) -> None:
    """The colour scale beside the matrix: 0% at the bottom, 100% at the top, square root."""
    scale = np.linspace(1, 0, height)[:, None].repeat(width, 1)
    sketch.image(left, 0, Image.fromarray(colour_map(scale)))
    sketch.frame(left, 0, left + width, height)
    right = left + width
    for t in BAR_TICKS:
        y = min(round((1 - math.sqrt(t)) * (height - 1)), height - 1)
        sketch.line(right, y, right + TICK - 1, y)
        sketch.text(right + TICK + 4, y, f"{100 * t:g}%", TICK_TEXT, anchor="lm")
    sketch.turned(sketch.box[2] + 10, height / 2, "share of the true class (square-root scale)",
                  TICK_TEXT, 90, anchor="mt")


def tile(image: np.ndarray, target: int = 144) -> Image.Image:
    """A C x H x W uint8 image (1 or 3 channels) at about `target` pixels on its longer side:
    small images scaled up by a whole factor with square pixels, large ones scaled down."""
    pixels = image[0] if image.shape[0] == 1 else np.transpose(image[:3], (1, 2, 0))
    picture = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    longest = max(picture.size)
    if longest <= target:
        factor = target // longest
        return picture.resize((picture.width * factor, picture.height * factor),
                              Image.Resampling.NEAREST)
    factor = target / longest
    return picture.resize((max(1, round(picture.width * factor)),
                           max(1, round(picture.height * factor))), Image.Resampling.LANCZOS)


def misclassified_figure(images: np.ndarray, mistakes: Sequence[dict[str, Any]],
                         title: str = "", columns: int = 6) -> Image.Image:
    """A grid of test images (uint8, in pixel space, N x C x H x W, indexed by each mistake's
    "index") with their true and predicted labels above them."""
    head = "Most confident mistakes on the test set: true label, predicted label (confidence)"
    lines = [head, title] if title else [head]
    sketch = Sketch()
    top = lines_height(len(lines), HEAD) + 20  # the grid's top, under the title
    if mistakes:
        width = _mistake_grid(sketch, images, mistakes, min(columns, len(mistakes)), top)
    else:
        width = 0
        sketch.text(0, top + 40, "no mistakes on the test set", TITLE, anchor="mm")
        sketch.reserve(0, top, 0, top + 80)
    sketch.lines(width / 2, 0, lines, HEAD)
    return sketch.picture()


def _mistake_grid(sketch: Sketch, images: np.ndarray, mistakes: Sequence[dict[str, Any]],
                  columns: int, top: float) -> float:
    """The tiles, framed, each under its two red lines, from `top` down; returns the grid's
    width."""
    label, gap_x, gap_y = 14, 18, 16
    tiles = [tile(images[m["index"]]) for m in mistakes]
    texts = [[f"true: {shorten(m['true'])}",
              f"pred: {shorten(m['predicted'])} ({100 * m['confidence']:.0f}%)"] for m in mistakes]
    widest = max(text_width(t, label) for pair in texts for t in pair)
    column = max(max(t.width for t in tiles), math.ceil(widest))
    tile_height = max(t.height for t in tiles)
    above = math.ceil(lines_height(2, label)) + 6  # the labels and a gap above each tile
    for k, (picture, pair) in enumerate(zip(tiles, texts)):
        row, col = divmod(k, columns)
        centre = col * (column + gap_x) + column / 2
        y = top + row * (above + tile_height + gap_y) + above
        x = round(centre - picture.width / 2)
        sketch.lines(centre, y - above, pair, label, MISTAKE_RED)
        sketch.image(x, y, picture)
        sketch.frame(x, y, x + picture.width, y + picture.height)
    return columns * column + (columns - 1) * gap_x
