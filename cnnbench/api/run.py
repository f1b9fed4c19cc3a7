"""A run directory as Python objects: its metrics, history, checkpoints and pictures."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from cnnbench.api.errors import CnnbenchError, library_errors
from cnnbench.api.frames import pandas_frame
from cnnbench.api.pictures import Picture, figure_picture, pictures_in
from cnnbench.rundir import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    metrics_file,
    read_metrics,
)
from cnnbench.rundir.stored_text import read_stored_rows


def number(text: str) -> Any:
    """A CSV cell as the number it holds (int, then float); other text as it is; '' as None."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(frozen=True)
class Checkpoints:
    """The run's checkpoints: best.pt (the best validation epoch) and last.pt (the last epoch,
    what a resume continues from); None where the file is not there."""

    best: Path | None
    last: Path | None


class Run:
    """One training run, read from its directory (the files `cnnbench train` writes)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir).resolve()

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """An earlier run directory (or its metrics.json), opened as `cnnbench.train` returns it."""
        folder = Path(path).expanduser()
        folder = folder.parent if folder.is_file() else folder
        if not metrics_file(folder).is_file():
            raise CnnbenchError(f"{folder} is not a run directory: it has no {METRICS_FILE}. Give "
                                f"the folder `cnnbench train` wrote (outputs/runs/<run>, or a "
                                f"sweep's job folder).")
        return cls(folder)

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics file, as it is now."""
        return read_metrics(self.dir)

    @property
    def status(self) -> str | None:
        return self.metrics.get("status")

    @property
    def history(self) -> list[dict[str, Any]]:
        """history.csv, one dict per epoch (numbers as numbers)."""
        try:
            rows = read_stored_rows(self.dir / HISTORY_FILE)
        except (OSError, ValueError):  # none yet, or not a regular, bounded CSV file
            return []
        return [{k: number(v) for k, v in row.items()} for row in rows]

    def history_frame(self):
        """history.csv as a pandas DataFrame."""
        return pandas_frame(self.history)

    @property
    def checkpoints(self) -> Checkpoints:
        folder = self.dir / CHECKPOINT_DIR
        best, last = folder / BEST_CHECKPOINT, folder / LAST_CHECKPOINT
        return Checkpoints(best if best.is_file() else None, last if last.is_file() else None)

    @property
    def pictures(self) -> dict[str, Picture]:
        """The run's pictures (confusion_matrix, misclassified, ...), shown inline in Jupyter."""
        return pictures_in(self.dir)

    @property
    def confusion_matrix(self) -> Picture | None:
        return self.pictures.get("confusion_matrix")

    @property
    def misclassified(self) -> Picture | None:
        return self.pictures.get("misclassified")

    @property
    def curves(self) -> Picture | None:
        """Validation accuracy and loss per epoch (the curves `cnnbench compare` draws)."""
        from cnnbench.commands.compare.curves import curves_figure
        from cnnbench.commands.compare.groups import group_runs
        from cnnbench.commands.compare.runs import load_runs

        return figure_picture(lambda: curves_figure(group_runs(load_runs([self.dir]))), "curves")

    def predict(self, inputs: str | Path | Sequence[str | Path], topk: int = 5,
                out: str | Path | None = None, device: str = "auto", batch_size: int = 256):
        """The model's top-k classes for the user's pictures (files or folders), as `cnnbench
        predict` gives them: predictions.csv and predictions.png are written to `out`."""
        from cnnbench.api.predictions import predict

        return predict(self, inputs, topk, out, device, batch_size)

    def __repr__(self) -> str:
        m = self.metrics
        acc = m.get("test/acc")
        shown = f", test acc {100 * acc:.2f}%" if isinstance(acc, (int, float)) else ""
        return f"Run({str(self.dir)!r}, status={m.get('status')!r}{shown})"


def run_of(path: str | Path | None) -> Run | None:
    """The Run in `path`, or None when there is none there (yet)."""
    if path is None:
        return None
    with library_errors():
        return Run(path) if metrics_file(path).is_file() else None
