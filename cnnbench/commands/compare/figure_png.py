"""A matplotlib figure as a PNG file (the comparison's pictures).

The figure is drawn once by the Agg canvas: the pixels are cropped to the drawn content (what
`bbox_inches="tight"` gives, without its second drawing) and encoded as PNG once.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnbench.evaluation.png import png_bytes

DPI = 110
PAD_INCHES = 0.1  # white border around the content, as savefig's bbox_inches="tight"


def render(fig: Figure, dpi: int = DPI) -> np.ndarray:
    """`fig` as H x W x 3 uint8 pixels on white, cropped to its content plus a small border."""
    fig.set_facecolor("white")
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.get_tightbbox(canvas.get_renderer()).padded(PAD_INCHES)
    width, height = fig.get_size_inches()
    if box.x0 < 0 or box.y0 < 0 or box.x1 > width or box.y1 > height:
        return _render_tight(fig, dpi)  # content outside the figure: savefig's way
    pixels = np.asarray(canvas.buffer_rgba())
    rows, cols = pixels.shape[:2]
    top, bottom = int((height - box.y1) * dpi), int(np.ceil((height - box.y0) * dpi))
    left, right = int(box.x0 * dpi), int(np.ceil(box.x1 * dpi))
    return np.ascontiguousarray(pixels[max(top, 0):min(bottom, rows),
                                       max(left, 0):min(right, cols), :3])


def _render_tight(fig: Figure, dpi: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def save_png(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # a name in a script the font lacks is drawn as a box
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        pixels = render(fig, dpi)
    path.write_bytes(png_bytes(pixels))
    return path
