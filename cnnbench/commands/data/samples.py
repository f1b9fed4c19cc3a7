"""samples.png: a few training images of each class, one row per class with its name.

The images are those of the run's training split, picked at random with a fixed seed (the same
picture every time), shown as the model gets them before normalization: resized to the dataset's
image size, scaled up by a whole factor with square pixels when small.
"""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from cnnbench.data.image_data import Split
from cnnbench.evaluation.plots import shorten, tile
from cnnbench.evaluation.raster import Sketch, lines_height, text_width

TITLE, TEXT = 18, 15   # font sizes, pixels
TILE = 64              # pixels of a sample's longer side (28 px images: 56, scaled 2x)
GAP, ROW_GAP = 4, 8
MAX_CLASSES = 20       # rows drawn; past this many classes, the first ones (the picture says so)
FRAME = (200, 200, 200)
PICK_SEED = 0


def picks(labels: torch.Tensor, classes: int, per_class: int) -> list[list[int]]:
    """Up to `per_class` random indices of each of the first `classes` classes."""
    g = torch.Generator().manual_seed(PICK_SEED)
    chosen = []
    for c in range(classes):
        where = (labels == c).nonzero().flatten()
        order = torch.randperm(len(where), generator=g)[:per_class]
        chosen.append(where[order].tolist())
    return chosen


def samples_title(dataset: str, classes: int, shown: int, per_class: int) -> list[str]:
    lines = [f"{dataset}: {per_class} random images per class from the run's train split"]
    if shown < classes:
        lines.append(f"the first {shown} of {classes} classes (at most {MAX_CLASSES} rows are "
                     f"drawn)")
    return lines


def samples_figure(split: Split, classes: Sequence[str], per_class: int,
                   dataset: str = "") -> Image.Image:
    """Rows of `per_class` images of each class (at most MAX_CLASSES rows)."""
    shown = min(len(classes), MAX_CLASSES)
    chosen = picks(split.labels, shown, per_class)
    tiles = [[tile(split.images[i].numpy(), TILE) for i in row] for row in chosen]
    flat = [t for row in tiles for t in row]
    cell_w = max((t.width for t in flat), default=TILE)
    cell_h = max((t.height for t in flat), default=TILE)
    sketch = Sketch()
    for r, row in enumerate(tiles):
        y = r * (cell_h + ROW_GAP)
        sketch.text(-12, y + cell_h / 2, shorten(classes[r]), TEXT, anchor="rm")
        if not row:
            sketch.text(0, y + cell_h / 2, "no images in the train split", TEXT, FRAME, anchor="lm")
        for c, picture in enumerate(row):
            x = c * (cell_w + GAP) + (cell_w - picture.width) // 2
            top = y + (cell_h - picture.height) // 2
            sketch.image(x, top, picture)
            sketch.frame(x, top, x + picture.width, top + picture.height, FRAME)
    width = per_class * cell_w + (per_class - 1) * GAP
    sketch.reserve(0, 0, width, shown * (cell_h + ROW_GAP) - ROW_GAP)
    lines = samples_title(dataset, len(classes), shown, per_class)
    widest = max(text_width(line, TITLE) for line in lines)
    left = sketch.box[0]
    centre = (left + width) / 2 if widest <= width - left else left + widest / 2
    sketch.lines(centre, -12 - lines_height(len(lines), TITLE), lines, TITLE)
    return sketch.picture()

