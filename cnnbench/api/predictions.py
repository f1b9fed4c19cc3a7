"""`Run.predict`: the predict command's classification of the user's pictures, as objects."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from cnnbench.api.errors import library_errors
from cnnbench.api.pictures import Picture


@dataclass
class Predictions:
    """One row per picture (file, predicted class, its probability, the top-k), the pictures
    that could not be read (file, why), the folder of predictions.csv and predictions.png."""

    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dir: Path | None = None

    @property
    def picture(self) -> Picture | None:
        png = self.dir / "predictions.png" if self.dir else None
        return Picture(png) if png is not None and png.is_file() else None

    def _repr_png_(self) -> bytes | None:
        return self.picture.png if self.picture else None

    def frame(self):
        from cnnbench.api.frames import pandas_frame

        return pandas_frame(self.rows)


def predict(run, inputs: str | Path | Sequence[str | Path], topk: int, out: str | Path | None,
            device: str, batch_size: int) -> Predictions:
    from cnnbench.commands.predict.command import new_out_dir, parse_args
    from cnnbench.commands.predict.command import run as predict_run
    from cnnbench.commands.predict.sources import open_source
    from cnnbench.terminal import RunConsole

    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    with library_errors():  # the options checked as the command checks them
        request = parse_args([f"checkpoint={run.dir}", f"topk={topk}", f"batch_size={batch_size}",
                              f"trainer.device={device}", "inputs=."])
        request.inputs = [str(p) for p in paths]
        if out is None:  # the folder is named here, so that it is known after the call
            source = open_source(run.dir, request.device)
            out = new_out_dir(source.name, source.prep.dataset)
        request.out = str(out)
        outcome = predict_run(request, RunConsole())
    rows = [{"file": p.file, "predicted": p.label, "probability": p.probability,
             "ranked": p.ranked} for p in outcome.predictions]
    return Predictions(rows, list(outcome.skipped), Path(out).resolve())
