"""Pictures across runs: accuracy vs training time, and validation curves side by side."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from .runs import RunRecord


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def accuracy_vs_time_figure(runs: Sequence[RunRecord], labels: Sequence[str]) -> Figure | None:
    """Test accuracy (y) against training seconds (x); marker area grows with parameter count."""
    points = [(r, lab) for r, lab in zip(runs, labels)
              if r.acc is not None and r.metrics.get("train_seconds") is not None]
    if not points:
        return None
    biggest = max(r.metrics.get("params", 1) or 1 for r, _ in points)
    size = lambda p: 40 + 900 * math.sqrt(max(p, 1) / biggest)  # noqa: E731 (area ~ sqrt(params))
    fig = Figure(figsize=(9, 6))
    ax = fig.add_subplot()
    for (run, lab), color in zip(points, _colors(len(points))):
        x, y = run.metrics["train_seconds"], 100 * run.acc
        params = run.metrics.get("params")
        ax.scatter([x], [y], s=size(params or 1), color=color, alpha=0.7, edgecolors="black",
                   linewidths=0.8, zorder=3,
                   label=f"{lab} ({params:,} params)" if params else lab)
        ax.annotate(lab, (x, y), textcoords="offset points", xytext=(8, 8), fontsize=8)
    xs = [r.metrics["train_seconds"] for r, _ in points]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.margins(x=0.15, y=0.15)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("training time (seconds)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy vs training time (marker size: number of parameters)")
    ax.legend(fontsize=8, loc="best", markerscale=0.4, title="run", title_fontsize=8)
    fig.tight_layout()
    return fig


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv as columns of floats (empty cells become NaN)."""
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                try:
                    number = float(value) if value not in (None, "") else math.nan
                except ValueError:
                    number = math.nan
                columns.setdefault(key, []).append(number)
    return columns


def curves_figure(runs: Sequence[RunRecord], labels: Sequence[str]) -> Figure | None:
    """Validation accuracy and loss per epoch, one line per run (training curves if no val set)."""
    series = []
    for run, lab in zip(runs, labels):
        if run.history is None:
            continue
        try:
            h = read_history(run.history)
        except (OSError, csv.Error):
            continue
        split = "val" if any(not math.isnan(v) for v in h.get("val/acc", [])) else "train"
        if f"{split}/acc" in h and h.get("epoch"):
            series.append((run, lab, split, h))
    if not series:
        return None
    fig = Figure(figsize=(13, 5.2 + 0.25 * -(-len(series) // 4)), layout="constrained")
    ax_acc, ax_loss = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for (run, lab, split, h), color in zip(series, _colors(len(series))):
        style = "-" if run.status == "completed" else "--"
        tag = "" if split == "val" else " (train: no val set)"
        tag += "" if run.status == "completed" else f" [{run.status}]"
        kw = dict(color=color, linestyle=style, marker="o", markersize=4)
        ax_acc.plot(h["epoch"], [100 * v for v in h[f"{split}/acc"]], label=lab + tag, **kw)
        ax_loss.plot(h["epoch"], h[f"{split}/loss"], **kw)
    for ax, what in ((ax_acc, "validation accuracy (%)"), (ax_loss, "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_acc.set_title("Validation accuracy per epoch")
    ax_loss.set_title("Validation loss per epoch")
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", fontsize=9,
               ncol=max(1, min(len(series), 4, 160 // (max(map(len, labels)) + 8))),
               frameon=False)
    return fig
