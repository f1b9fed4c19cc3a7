"""curves.png: validation accuracy and loss per epoch, one line per group of seeds (the mean
over its runs) with a band from the lowest to the highest run at each epoch."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

from cnnbench.commands.compare.groups import Group
from cnnbench.commands.compare.plots import colors, group_legend, names_title, short_names
from cnnbench.commands.compare.runs import RunRecord
from cnnbench.rundir.stored_text import read_stored_rows

History = dict[str, list[float]]  # history.csv: column name -> one value per row


def read_history(path: Path) -> History:
    """history.csv as columns of floats (empty cells become NaN)."""
    columns: dict[str, list[float]] = {}
    for row in read_stored_rows(path):  # a regular file of a bounded size
        for key, value in row.items():
            try:
                number = float(value) if value not in (None, "") else math.nan
            except ValueError:
                number = math.nan
            columns.setdefault(key, []).append(number)
    return columns


@dataclass
class Band:
    """One column of the histories of a group's runs: per epoch, mean, lowest and highest."""
    epochs: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]


def band(histories: Sequence[History], column: str) -> Band:
    """Per epoch over the runs that reached it (a run's last row of an epoch counts)."""
    per_epoch: dict[float, list[float]] = {}
    for h in histories:
        values = dict(zip(h.get("epoch", []), h.get(column, [])))
        for epoch, value in values.items():
            if not math.isnan(epoch) and not math.isnan(value):
                per_epoch.setdefault(epoch, []).append(value)
    epochs = sorted(per_epoch)
    return Band(epochs, [math.fsum(per_epoch[e]) / len(per_epoch[e]) for e in epochs],
                [min(per_epoch[e]) for e in epochs], [max(per_epoch[e]) for e in epochs])


def _histories(runs: Sequence[RunRecord]) -> list[tuple[RunRecord, History]]:
    """The runs with a readable history.csv holding epochs, with their histories."""
    found = []
    for run in runs:
        if run.history is None:
            continue
        try:
            history = read_history(run.history)
        except (OSError, ValueError):  # StoredTextError: not a regular, bounded CSV file
            continue
        if history.get("epoch"):
            found.append((run, history))
    return found


def _series(group: Group) -> tuple[list[tuple[RunRecord, History]], str, bool] | None:
    """The histories to draw (the runs in the statistics; else every run, drawn dashed), the
    split they show (val, or train when any has no val set), and whether they are complete."""
    complete = bool(group.used)
    histories = _histories(group.used if complete else group.runs)
    if not histories:
        return None
    has_val = all(any(not math.isnan(v) for v in h.get("val/acc", []))
                  for _, h in histories)
    split = "val" if has_val else "train"
    if not all(f"{split}/acc" in h for _, h in histories):
        return None
    return histories, split, complete


def epoch_axis(ax, epochs: Sequence[float]) -> None:
    """Whole epochs as ticks, however few: one or two epochs get half an epoch of room on
    either side (matplotlib would otherwise tick 0.94, 0.96, ... around a single point)."""
    from matplotlib.ticker import MaxNLocator

    if epochs and max(epochs) - min(epochs) < 2:
        ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def curves_figure(groups: Sequence[Group]) -> Figure | None:
    """Validation accuracy and loss per epoch: the mean of each group, shaded min–max."""
    series = [(g, s) for g in groups if (s := _series(g)) is not None]
    if not series:
        return None
    epochs = [e for _, (histories, _, _) in series for _, h in histories
              for e in h["epoch"] if not math.isnan(e)]
    short = short_names(groups)
    drawn = [group_legend(g, [r for r, _ in h], short) for g, (h, _, _) in series]
    longest = max(len(line) for label in drawn for line in label.splitlines())
    ncol = max(1, min(len(series), 3, 180 // (longest + 8)))
    lines = sum(label.count("\n") + 1 for label in drawn)
    fig = Figure(figsize=(13, 5.4 + 0.2 * -(-lines // ncol)), layout="constrained")
    ax_acc, ax_loss = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for (g, (histories, split, complete)), color in zip(series, colors(len(series))):
        tag = "" if split == "val" else " (train: no val set)"
        tag += "" if complete else f" [not completed: {', '.join(r.status for r in g.runs)}]"
        kw = dict(color=color, linestyle="-" if complete else "--", marker="o", markersize=3)
        for ax, column, scale in ((ax_acc, f"{split}/acc", 100), (ax_loss, f"{split}/loss", 1)):
            b = band([h for _, h in histories], column)
            if not b.epochs:
                continue
            ax.plot(b.epochs, [scale * v for v in b.mean],
                    label=group_legend(g, [r for r, _ in histories], short) + tag, **kw)
            if len(histories) > 1:
                ax.fill_between(b.epochs, [scale * v for v in b.low],
                                [scale * v for v in b.high], color=color, alpha=0.18,
                                linewidth=0)
    for ax, what in ((ax_acc, "validation accuracy (%)"), (ax_loss, "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.grid(True, alpha=0.3)
        epoch_axis(ax, epochs)
    ax_acc.set_title("Validation accuracy per epoch\nline: mean over the seeds; "
                     "shaded: min–max of the seeds")
    ax_loss.set_title("Validation loss per epoch\nline: mean over the seeds; "
                      "shaded: min–max of the seeds")
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=9, frameon=False,
               ncol=ncol, title=names_title(groups), title_fontsize=9)
    return fig
