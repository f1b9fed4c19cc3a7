"""predictions.png: the pictures as the model saw them (converted to its channels and size),
each under its file name and predicted class with the probability. Drawn with Pillow, as the
run pictures are (`evaluation.raster`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnbench.commands.predict.results import Prediction
from cnnbench.evaluation.plots import png_bytes, shorten, tile
from cnnbench.evaluation.raster import Sketch, lines_height, text_width
from cnnbench.rundir import Writer, write_bytes

PNG_FILE = "predictions.png"
SHOWN = 48          # pictures in the grid; predictions.csv has them all
COLUMNS = 8
HEAD, LABEL = 17, 14  # font sizes, pixels
NAME_COLOUR, CLASS_COLOUR = (90, 90, 90), (8, 48, 107)


def predictions_figure(images: Sequence[np.ndarray], predictions: Sequence[Prediction],
                       title: str, total: int):
    """A grid of `images` (uint8 C x H x W, one per prediction, in order); `total`: how many
    pictures were predicted in all."""
    shown = len(images)
    head = "Predicted class (probability) of each picture, as the model sees it"
    lines = [head, title + (f"; the first {shown} of {total} pictures" if total > shown else "")]
    sketch = Sketch()
    top = lines_height(len(lines), HEAD) + 20
    width = _grid(sketch, images, predictions, min(COLUMNS, shown), top)
    sketch.lines(width / 2, 0, lines, HEAD)
    return sketch.picture()


def _grid(sketch: Sketch, images: Sequence[np.ndarray], predictions: Sequence[Prediction],
          columns: int, top: float) -> float:
    """The tiles, framed, each above its two lines, from `top` down; returns the width."""
    gap_x, gap_y = 18, 14
    tiles = [tile(image, 112) for image in images]
    texts = [[shorten(Path(p.file).name, 22), f"{shorten(p.label, 18)} "
              f"({100 * p.probability:.0f}%)"] for p in predictions]
    widest = max(text_width(t, LABEL) for pair in texts for t in pair)
    column = max(max(t.width for t in tiles), math.ceil(widest))
    tile_height = max(t.height for t in tiles)
    below = math.ceil(lines_height(2, LABEL)) + 6
    for k, (picture, (name, label)) in enumerate(zip(tiles, texts)):
        row, col = divmod(k, columns)
        centre = col * (column + gap_x) + column / 2
        y = top + row * (tile_height + below + gap_y)
        x = round(centre - picture.width / 2)
        sketch.image(x, y, picture)
        sketch.frame(x, y, x + picture.width, y + picture.height)
        bottom = sketch.lines(centre, y + tile_height + 4, [name], LABEL, NAME_COLOUR)
        sketch.lines(centre, bottom + 2, [label], LABEL, CLASS_COLOUR)
    return columns * column + (columns - 1) * gap_x


def write_grid(path: Path, images: Sequence[np.ndarray], predictions: Sequence[Prediction],
               title: str, total: int, by: Writer | None = None) -> None:
    write_bytes(path, png_bytes(predictions_figure(images, predictions, title, total)), by)
