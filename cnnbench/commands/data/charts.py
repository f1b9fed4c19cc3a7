"""class_counts.png: images per class in each split, one panel per split side by side.

Classes are rows (their names once, on the left), so 100 classes read as well as 10; each
panel has its own scale (a test set is a fraction of the training set) and the count at the end
of every bar. A grey line marks the count every class would have if the split were even.
"""
from __future__ import annotations

from typing import Sequence

from PIL import Image

from cnnbench.evaluation.plots import shorten
from cnnbench.evaluation.raster import Sketch, lines_height, text_width

TITLE, HEAD, TEXT = 18, 16, 15  # font sizes, pixels
BAR_LENGTH = 280                # pixels of the longest bar in a panel
PANEL_GAP = 36
SPLIT_COLOURS = {"train": (31, 119, 180), "val": (255, 127, 14), "test": (44, 160, 44)}
EVEN_GREY = (175, 175, 175)
STRIPE = (242, 242, 242)        # every other row, past STRIPES_FROM classes: a class read across
STRIPES_FROM = 13
AXIS_GREY = (90, 90, 90)


def row_height(n: int) -> int:
    """Pixels per class: 30 up to 20 classes, 14 at 100, never less than 12."""
    return max(12, min(30, round(1400 / n)))


def _bar(sketch: Sketch, x: float, y: float, width: float, height: int,
         colour: tuple[int, int, int]) -> None:
    if round(width) >= 1:
        sketch.image(x, y, Image.new("RGB", (round(width), height), colour))


def _panel_width(counts: Sequence[int], size: int) -> float:
    """The longest bar, and room for the count after it."""
    return BAR_LENGTH + 4 + max(text_width(f"{count:,}", size) for count in counts)


def _stripes(sketch: Sketch, n: int, row: int, left: float, right: float) -> None:
    for k in range(1, n, 2):
        _bar(sketch, left, k * row, right - left, row, STRIPE)


def _panel(sketch: Sketch, left: float, split: str, counts: Sequence[int], row: int,
           size: int) -> None:
    """One split's bars from `left`, with their counts and the even line."""
    most = max(max(counts), 1)
    scale = BAR_LENGTH / most
    bottom = row * len(counts)
    even = left + scale * sum(counts) / len(counts)
    sketch.line(round(even), 0, round(even), bottom - 1, EVEN_GREY)  # behind the bars
    bar = max(6, round(row * 0.68))
    for k, count in enumerate(counts):
        _bar(sketch, left, k * row + (row - bar) / 2, scale * count, bar,
             SPLIT_COLOURS.get(split, AXIS_GREY))
        sketch.text(left + scale * count + 4, (k + 0.5) * row, f"{count:,}", size, anchor="lm")
    sketch.line(left - 1, 0, left - 1, bottom - 1, AXIS_GREY)
    sketch.text(left, -10, f"{split}: {sum(counts):,} images", HEAD, anchor="lb")


def class_counts_figure(counts: dict[str, Sequence[int]], classes: Sequence[str],
                        title: str = "") -> Image.Image:
    """Bars per class for each split in `counts` (train, val, test), panels side by side."""
    n = len(classes)
    row = row_height(n)
    size = min(TEXT, max(9, row - 3))
    lefts = [0.0]
    for values in counts.values():
        lefts.append(lefts[-1] + _panel_width(values, size) + PANEL_GAP)
    width = lefts[-1] - PANEL_GAP
    sketch = Sketch()
    names = [shorten(name) for name in classes]
    if n >= STRIPES_FROM:
        _stripes(sketch, n, row, -12 - max(text_width(name, size) for name in names), width)
    for k, name in enumerate(names):
        sketch.text(-8, (k + 0.5) * row, name, size, anchor="rm")
    for left, (split, values) in zip(lefts, counts.items()):
        _panel(sketch, left, split, values, row, size)
    note = "grey line: the count of each class if the split were even"
    sketch.text(0, row * n + 10, note, max(size, 13), AXIS_GREY, anchor="lt")
    head = "Images per class in each split"
    lines = [head, title] if title else [head]
    top = sketch.box[1] - 12 - lines_height(len(lines), TITLE)
    centre = (sketch.box[0] + width) / 2
    if text_width(max(lines, key=len), TITLE) > width - sketch.box[0]:
        centre = sketch.box[0] + text_width(max(lines, key=len), TITLE) / 2
    sketch.lines(centre, top, lines, TITLE)
    return sketch.picture()
