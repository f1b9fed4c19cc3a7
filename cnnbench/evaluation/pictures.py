"""A run's two pictures, confusion_matrix.png and misclassified.png: drawn (`plots`), written into
the run directory and handed to TensorBoard.

They cost a few hundredths of a second, so they are drawn in the calling thread. A picture that
cannot be drawn or written is a warning, not a lost run: the numbers are already safe.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cnnbench.rundir import write_bytes

CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_PNG = "misclassified.png"


def write_pictures(run_dir: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str],
                   images: np.ndarray, mistakes: Sequence[dict[str, Any]], title: str, *,
                   grid: bool = True, tb=None, step: int = 0) -> list[str]:
    """confusion_matrix.png and (if `grid`) misclassified.png of `mistakes`, whose "index" is
    into `images` (N x C x H x W uint8); each also as an image in `tb` (a TensorBoardSink, or
    None). Returns the warnings of the pictures that could not be written."""
    pictures: list[tuple[str, str, Callable[[Any], Any]]] = [
        (CONFUSION_PNG, "test/confusion_matrix",
         lambda plots: plots.confusion_matrix_figure(confusion, classes, title))]
    if grid:
        pictures.append((MISCLASSIFIED_PNG, "test/misclassified",
                         lambda plots: plots.misclassified_figure(images, mistakes, title)))
    warnings = []
    for name, tag, draw in pictures:
        try:
            from cnnbench.evaluation import plots

            picture = draw(plots)
            png = plots.png_bytes(picture)
            write_bytes(Path(run_dir) / name, png)
        except Exception as err:  # noqa: BLE001 (any drawing or writing failure)
            warnings.append(f"{name} could not be written ({type(err).__name__}: {err})")
            continue
        if tb is not None:
            tb.png(tag, png, picture.height, picture.width, step)
    return warnings
