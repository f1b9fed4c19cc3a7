"""`cnnbench predict checkpoint=RUN inputs=PICTURES [topk=5] [out=DIR] [trainer.device=auto]`.

Classifies the user's own pictures with a trained model (a checkpoint, a run directory or an
ONNX file from `cnnbench export`): each is converted as the model's dataset was, batches go
through the model, and each picture gets its top-k classes. A table on the terminal,
predictions.csv and predictions.png in a new folder under outputs/predict/.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape

from cnnbench.errors import UserError, printable
from cnnbench.settings.options import normalized, run_subcommand

USAGE = """\
usage: cnnbench predict checkpoint=PATH inputs=PICTURES [key=value ...]

Classifies your own pictures (PNG, JPEG, BMP, WebP; any size and mode) with a
trained model. Each is converted as the model's dataset was: to its channels
(RGB, or gray), stretched to its image size (bilinear), normalized with its mean
and std. MNIST-style models expect white digits on a black background: a dark
digit on white paper is not inverted for you.
  checkpoint=PATH     a run directory, a best.pt/last.pt file, or an .onnx file
                      from `cnnbench export`
  inputs=A,B,...      files, folders (searched for pictures) or quoted globs;
                      repeat inputs= or list paths after the options for more
  topk=5              classes shown per picture (at most the number of classes)
  out=DIR             where predictions.csv and predictions.png go (default:
                      outputs/predict/<time>_<model>_<dataset>_<id>)
  trainer.device=auto cpu, cuda or auto
  batch_size=256      pictures per batch
"""
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class Request:
    checkpoint: str
    inputs: list[str]
    topk: int = 5
    out: str | None = None
    device: str = "auto"
    batch_size: int = 256


def _positive(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise UserError(f"{key}={value} is not valid: a whole number of at least 1, e.g. "
                        f"{key}={5 if key == 'topk' else 64}.")
    return number


def parse_args(args: Sequence[str]) -> Request:
    from cnnbench.commands.predict.inputs import split_values

    found: dict[str, str] = {}
    inputs: list[str] = []
    for arg in normalized(args, valued=("checkpoint", "inputs", "out", "topk", "batch_size",
                                        "trainer.device")):
        key, sep, value = arg.partition("=")
        if key == "inputs":
            inputs.append(value)
        elif sep and key in ("checkpoint", "out", "topk", "batch_size", "trainer.device"):
            found[key] = value
        elif not sep or Path(arg).expanduser().exists():
            inputs.append(arg)  # a path after the options (a shell glob, expanded)
        else:
            raise UserError(f"'{arg}' is not an option of `cnnbench predict`.\n{USAGE}")
    if not found.get("checkpoint"):
        raise UserError(f"`cnnbench predict` needs checkpoint=PATH.\n{USAGE}")
    device = found.get("trainer.device", "auto")
    if device not in DEVICES:
        raise UserError(f"trainer.device={device} is not valid: {', '.join(DEVICES)}.")
    return Request(found["checkpoint"], split_values(inputs),
                   _positive("topk", found.get("topk", "5")), found.get("out"), device,
                   _positive("batch_size", found.get("batch_size", "256")))


@dataclass
class Outcome:
    predictions: list = field(default_factory=list)   # Prediction, in input order
    skipped: list = field(default_factory=list)       # (file, why)
    images: list = field(default_factory=list)        # uint8 C x H x W of the first SHOWN


def predict_files(source, files: Sequence[Path], batch_size: int, topk: int) -> Outcome:
    """Every file decoded (in threads), batched through `source`; unreadable ones skipped. A
    name that is not valid UTF-8 is kept with its odd bytes as \\xNN (as the table and
    predictions.csv can show it)."""
    from cnnbench.commands.predict.grid import SHOWN
    from cnnbench.commands.predict.inputs import load_image
    from cnnbench.commands.predict.results import Prediction, ranked

    outcome, prep = Outcome(), source.prep
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2)) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            loaded = list(pool.map(lambda f: load_image(f, prep), chunk))
            good = [(printable(str(f)), a) for f, a in zip(chunk, loaded)
                    if not isinstance(a, str)]
            outcome.skipped += [(printable(str(f)), a) for f, a in zip(chunk, loaded)
                                if isinstance(a, str)]
            if not good:
                continue
            logits = source.logits(prep.normalize(np.stack([a for _, a in good])))
            refuse_nonfinite(logits, [name for name, _ in good], source.described)
            for (name, image), top in zip(good, ranked(logits, prep.classes, topk)):
                outcome.predictions.append(Prediction(name, top))
                if len(outcome.images) < SHOWN:
                    outcome.images.append(image)
    return outcome


def refuse_nonfinite(logits: np.ndarray, names: Sequence[str], model: str) -> None:
    """Refuse, in one paragraph, scores that are NaN or infinite: there is no class to name."""
    from cnnbench.engine.finite import nonfinite_rows

    rows = nonfinite_rows(logits)
    if rows:
        raise UserError(
            f"The model {model} gave scores that are NaN or infinite for {len(rows)} of "
            f"{len(names)} pictures (the first: {names[rows[0]]}), so it has no prediction for "
            f"them: its weights hold NaN or infinite values, or its computation overflows. "
            f"Predict with a checkpoint of a run that did not diverge (`cnnbench compare` "
            f"shows each run's status).")


def new_out_dir(model: str, dataset: str) -> Path:
    from cnnbench.run.stored_config import safe_name
    from cnnbench.rundir.naming import stamped

    return Path("outputs") / "predict" / stamped(safe_name(model), safe_name(dataset))


def run(request: Request, console: Console) -> Outcome:
    from cnnbench.commands.predict.grid import PNG_FILE, write_grid
    from cnnbench.commands.predict.inputs import find_images
    from cnnbench.commands.predict.results import (
        CSV_FILE,
        CSV_HEADER,
        TABLE_ROWS,
        table,
        write_csv,
    )
    from cnnbench.commands.predict.sources import open_source
    from cnnbench.rundir import begins_with, claim_outputs

    files = find_images(request.inputs)
    source = open_source(Path(request.checkpoint).expanduser(), request.device)
    out = Path(request.out) if request.out else new_out_dir(source.name, source.prep.dataset)
    writer = claim_outputs(out, "predict", [CSV_FILE, PNG_FILE],
                           lambda folder: begins_with(folder / CSV_FILE, CSV_HEADER.encode()))
    topk = min(request.topk, len(source.prep.classes))
    outcome = predict_files(source, files, request.batch_size, topk)
    if not outcome.predictions:
        shown = "; ".join(f"{f} ({why})" for f, why in outcome.skipped[:5])
        raise UserError(f"None of the {len(files)} file(s) could be read as a picture: {shown}. "
                        f"Give PNG, JPEG, BMP or WebP files (or any format Pillow reads).")
    title = f"{source.name[:60]} on {source.prep.dataset or 'its dataset'}, {source.device_name}"
    console.print(table(outcome.predictions, f"Predictions of {title}", width=console.width))
    if len(outcome.predictions) > TABLE_ROWS:
        console.print(f"... and {len(outcome.predictions) - TABLE_ROWS} more in {CSV_FILE}.")
    for file, why in outcome.skipped:
        console.print(f"[yellow]skipped:[/] {escape(file)}: {escape(why)}", highlight=False,
                      soft_wrap=True)
    try:
        write_csv(out / CSV_FILE, outcome.predictions, outcome.skipped, topk, writer)
        write_grid(out / PNG_FILE, outcome.images, outcome.predictions, title,
                   len(outcome.predictions), writer)
    except OSError as err:
        raise UserError(f"Cannot write the predictions to {out} ({err.strerror or err}): "
                        f"choose a folder you can write to with out=DIR.") from None
    _summary(console, source, request, topk, outcome, out)
    return outcome


def _summary(console: Console, source, request: Request, topk: int, outcome: Outcome,
             out: Path) -> None:
    from cnnbench.run.sinks import print_paths

    n, prep = len(outcome.predictions), source.prep
    note = f" (topk={request.topk} is more than its {topk} classes)" if topk < request.topk else ""
    console.print(f"{n} picture{'s' if n != 1 else ''} predicted"
                  f"{f', {len(outcome.skipped)} skipped' if outcome.skipped else ''}: top {topk}"
                  f" classes each{note}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"input: {prep.describe()}", markup=False, highlight=False, soft_wrap=True)
    print_paths(console, {"model": source.described, "predictions": out / "predictions.csv",
                          "pictures": out / "predictions.png"})


def main(args: Sequence[str], console: Console) -> int:
    return run_subcommand(args, console, USAGE, lambda a, c: run(parse_args(a), c))
