"""Predictions as the user reads them: the top-k classes of each picture with their
probabilities, as a table on the terminal and as predictions.csv."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cnnbench.rundir import Writer, write_text
from cnnbench.rundir.csv_cells import plain_row

CSV_FILE = "predictions.csv"
CSV_HEADER = "file,predicted,probability"  # how predictions.csv begins
TABLE_ROWS = 40  # rows printed; predictions.csv has them all


@dataclass
class Prediction:
    file: str
    ranked: list[tuple[str, float]]  # (class, probability), most probable first

    @property
    def label(self) -> str:
        return self.ranked[0][0]

    @property
    def probability(self) -> float:
        return self.ranked[0][1]


def ranked(logits: np.ndarray, classes: Sequence[str], topk: int) -> list[list[tuple[str, float]]]:
    """Each row's `topk` classes by softmax probability (float64, ties: the lower index first)."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :topk]
    return [[(classes[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


def write_csv(path: Path, predictions: Sequence[Prediction], skipped: Sequence[tuple[str, str]],
              topk: int, by: Writer | None = None) -> None:
    """file, predicted, probability, then top2, top2_probability ... topK; a skipped file has
    its reason in the last column, error. File and class names are text cells no spreadsheet
    runs as a formula (`plain_cell`)."""
    header = CSV_HEADER.split(",")
    for rank in range(2, topk + 1):
        header += [f"top{rank}", f"top{rank}_probability"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*header, "error"])
    for p in predictions:
        cells = [p.file]
        for name, prob in p.ranked:
            cells += [name, f"{prob:.6f}"]
        writer.writerow(plain_row([*cells, *[""] * (len(header) - len(cells)), ""]))
    for file, why in skipped:
        writer.writerow(plain_row([file, *[""] * (len(header) - 1), why]))
    write_text(path, buffer.getvalue(), by)


def table(predictions: Sequence[Prediction], title: str, limit: int = TABLE_ROWS,
          width: int = 200):
    """A rich Table of the first `limit` predictions (names as plain text, never markup), within
    `width` columns. The next most probable classes share one line per picture where every
    row's fits, else each has its own line: a class is never parted from its probability."""
    from rich.table import Table
    from rich.text import Text

    shown = predictions[:limit]
    topk = max(len(p.ranked) for p in shown)
    others = [[f"{name} {100 * prob:.1f}%" for name, prob in p.ranked[1:]] for p in shown]
    one_line = [", ".join(o) for o in others]
    cells = [[p.file, p.label, f"{100 * p.probability:.1f}%"] for p in shown]
    heads = ["file", "predicted", "probability", f"next {topk - 1}"]
    natural = sum(max(len(heads[i]), *(len(c[i]) for c in cells)) + 3 for i in range(3)) \
        + max(len(heads[3]), *map(len, one_line)) + 4
    grid = Table(title=Text(title), title_justify="left")
    grid.add_column("file", overflow="fold")
    grid.add_column("predicted", style="bold", overflow="fold")
    grid.add_column("probability", justify="right", no_wrap=True)
    if topk > 1:
        grid.add_column(heads[3], overflow="fold")
    for row, listed, joined in zip(cells, others, one_line):
        rest = [Text(joined if natural <= width else "\n".join(listed))] if topk > 1 else []
        grid.add_row(Text(row[0]), Text(row[1]), row[2], *rest)
    return grid
