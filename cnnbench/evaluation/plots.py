"""The per-run pictures: a normalized confusion matrix and a grid of the worst mistakes.

Figures are built with matplotlib's object API (no pyplot, no global state, no display needed)
and drawn once by the Agg canvas: the pixels are cropped to the drawn content (what
`bbox_inches="tight"` gives, without its second drawing), encoded as PNG once, and that PNG is
both the file and the TensorBoard image.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

DPI = 110
PAD_INCHES = 0.1  # white border around the content, as savefig's bbox_inches="tight"


def warm_up() -> None:
    """A first drawing's one-off costs (the font list, the default font), paid ahead."""
    fig = Figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0%", fontsize=9)
    FigureCanvasAgg(fig).draw()


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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return _decoded(buffer)


def _decoded(source) -> np.ndarray:
    from PIL import Image

    with Image.open(source) as image:
        return np.asarray(image.convert("RGB"))


def png_bytes(pixels: np.ndarray) -> bytes:
    """H x W x 3 uint8 pixels as a PNG file's bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def save_png(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(render(fig, dpi)))
    return path


def read_png(path: Path) -> np.ndarray:
    """A saved PNG as H x W x 3 uint8 (what TensorBoard's image plugin takes)."""
    return _decoded(path)


def confusion_matrix_figure(counts: Sequence[Sequence[int]], classes: Sequence[str],
                            title: str = "") -> Figure:
    """Rows: true class, normalized to sum to 100%; columns: predicted class."""
    counts = np.asarray(counts, dtype=np.float64)
    n = len(classes)
    rows = counts.sum(1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = float(np.clip(0.55 * n + 2.5, 6.0, 22.0))
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot()
    # a square-root colour scale: 1% confusions are visible next to 99% diagonals
    im = ax.imshow(norm, cmap="Blues", norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0))
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = [0, 0.01, 0.05, 0.2, 0.5, 1]
    cbar.set_ticks(ticks, labels=[f"{100 * t:g}%" for t in ticks])
    cbar.set_label("share of the true class (square-root scale)")
    tick_size = 10 if n <= 20 else max(4, 9 - n // 25)
    rotate = max(len(str(c)) for c in classes) > 3
    ax.set_xticks(range(n), [str(c) for c in classes], rotation=45 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor", fontsize=tick_size)
    ax.set_yticks(range(n), [str(c) for c in classes], fontsize=tick_size)
    ax.set_xlabel("predicted class", fontsize=11)
    ax.set_ylabel("true class", fontsize=11)
    if n <= 20:  # percentages in the cells; empty where nothing was predicted
        for i in range(n):
            for j in range(n):
                if counts[i, j] > 0:
                    pct = 100 * norm[i, j]
                    text = f"{pct:.0f}" if pct >= 9.95 else f"{pct:.1f}" if pct >= 0.05 else "<.1"
                    ax.text(j, i, text, ha="center", va="center", fontsize=9 if n <= 12 else 7,
                            color="white" if norm[i, j] > 0.5 else "black")
    head = "Confusion matrix: % of each true class (row) predicted as each class (column)"
    ax.set_title(f"{head}\n{title}" if title else head, fontsize=12)
    return fig


def mosaic(images: np.ndarray, columns: int, gap: tuple[int, int]) -> np.ndarray:
    """C x H x W uint8 `images` tiled `columns` wide on white, `gap` (rows, columns) of white
    after each: H' x W' (one channel) or H' x W' x 3."""
    count, channels, h, w = images.shape
    rows = -(-count // columns)
    step_y, step_x = h + gap[0], w + gap[1]
    shape = (rows * step_y, columns * step_x) + (() if channels == 1 else (3,))
    out = np.full(shape, 255, dtype=np.uint8)
    for k, image in enumerate(images):
        y, x = (k // columns) * step_y + gap[0], (k % columns) * step_x
        out[y:y + h, x:x + w] = image[0] if channels == 1 else np.transpose(image[:3], (1, 2, 0))
    return out


def misclassified_figure(images: np.ndarray, mistakes: Sequence[dict[str, Any]],
                         title: str = "", columns: int = 6) -> Figure:
    """A grid of test images (uint8, in pixel space) with their true and predicted labels.

    One image (the tiles, with room for each label above its tile) in one axes: a few
    milliseconds to draw, where an axes per tile costs a second.
    """
    count = max(len(mistakes), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    fig = Figure(figsize=(columns * 1.9, rows * 2.3 + 0.8))
    head = "Most confident mistakes on the test set: true label, predicted label (confidence)"
    fig.text(0.5, 1 - 0.1 / fig.get_figheight(), f"{head}\n{title}" if title else head,
             ha="center", va="top", fontsize=11)
    ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.8 / fig.get_figheight()))
    ax.set_axis_off()
    if not mistakes:
        ax.text(0.5, 0.5, "no mistakes on the test set", ha="center", va="center", fontsize=12)
        return fig
    chosen = images[[m["index"] for m in mistakes]]
    h, w = chosen.shape[-2:]
    gap = (max(round(0.4 * h), 1), max(round(0.15 * w), 1))  # label above, space beside
    ax.imshow(mosaic(chosen, columns, gap), cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    frames = []
    for k, m in enumerate(mistakes):
        y, x = (k // columns) * (h + gap[0]) + gap[0], (k % columns) * (w + gap[1])
        frames.append([(x - 0.5, y - 0.5), (x + w - 0.5, y - 0.5), (x + w - 0.5, y + h - 0.5),
                       (x - 0.5, y + h - 0.5), (x - 0.5, y - 0.5)])
        ax.text(x + w / 2 - 0.5, y - 0.04 * h - 0.5,
                f"true: {m['true']}\npred: {m['predicted']} ({100 * m['confidence']:.0f}%)",
                ha="center", va="bottom", fontsize=9, color="#b00020", linespacing=1.15)
    ax.add_collection(LineCollection(frames, colors="black", linewidths=0.8))
    return fig
