"""The per-run pictures: a normalized confusion matrix and a grid of the worst mistakes.

Figures are built with matplotlib's object API (no pyplot, no global state, no display needed).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure


def save_png(fig: Figure, path: Path, dpi: int = 110) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def read_png(path: Path) -> np.ndarray:
    """A saved PNG as H x W x 3 uint8 (what TensorBoard's image plugin takes)."""
    from matplotlib.image import imread

    image = imread(path)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return image[..., :3]


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


def _show(ax, image: np.ndarray) -> None:
    """Show a C x H x W uint8 image: gray for one channel, RGB for three."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(np.transpose(image[:3], (1, 2, 0)), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def misclassified_figure(images: np.ndarray, mistakes: Sequence[dict[str, Any]],
                         title: str = "", columns: int = 6) -> Figure:
    """A grid of test images (uint8, in pixel space) with their true and predicted labels."""
    count = max(len(mistakes), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    fig = Figure(figsize=(columns * 1.9, rows * 2.3 + 0.8), layout="constrained")
    for k, m in enumerate(mistakes):
        ax = fig.add_subplot(rows, columns, k + 1)
        _show(ax, images[m["index"]])
        ax.set_title(f"true: {m['true']}\npred: {m['predicted']} ({100 * m['confidence']:.0f}%)",
                     fontsize=9, color="#b00020", linespacing=1.15)
    if not mistakes:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes on the test set", ha="center", va="center", fontsize=12)
    head = "Most confident mistakes on the test set: true label, predicted label (confidence)"
    fig.suptitle(f"{head}\n{title}" if title else head, fontsize=11)
    fig.get_layout_engine().set(h_pad=0.12, w_pad=0.06)
    return fig
