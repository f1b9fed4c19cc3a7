"""`cnnbench data dataset=NAME [dataset.KEY=VALUE ...] [samples=8] [out=DIR] [json=true]`.

Loads the dataset as a run would (the same config, the same train/val split for the same
`trainer.val_split` and `trainer.seed`), shows it as tables and writes data.json (everything
shown), class_counts.png and samples.png to a new folder under outputs/data/.
"""
from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rich.console import Console

from cnnbench.errors import UserError
from cnnbench.settings.names import check_override_names, plain_group_choices
from cnnbench.settings.options import flag, normalized

USAGE = """\
usage: cnnbench data dataset=NAME [dataset.KEY=VALUE ...] [key=value ...]

Shows what a dataset is before a model is trained on it: the sizes of the train,
val and test splits (the run's split), the image shape, the class names and the
images per class in each split, the mean and std per channel, and for
dataset=imagefolder the files the loader skips and the sizes of the originals.
Options:
  dataset=NAME, dataset.KEY=VALUE
                   as for cnnbench train, e.g. dataset.root=/data, or
                   dataset=imagefolder dataset.path=~/photos
  trainer.val_split=F, trainer.seed=N
                   the validation split the run would hold out (defaults: those
                   of cnnbench train)
  samples=N        images per class in samples.png (default 8; at most 20
                   classes are drawn)
  out=DIR          where data.json, class_counts.png and samples.png go
                   (default: outputs/data/<time>_<dataset>_<id>)
  json=true        the summary as JSON on stdout, no tables
"""
SHORT_USAGE = "`cnnbench data --help` lists its options."
TRAINER_KEYS = ("trainer.val_split", "trainer.seed")
MAX_SAMPLES = 32


@dataclass
class DataOptions:
    overrides: list[str] = field(default_factory=list)
    samples: int = 8
    out: str | None = None
    as_json: bool = False


def _samples(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"samples={value} is not valid: give the number of images per class in "
                        f"samples.png, a whole number from 1 to {MAX_SAMPLES} (e.g. samples=8).")
    return n


def parse_args(args: Sequence[str]) -> DataOptions:
    opts = DataOptions()
    args = plain_group_choices(normalized(args, flags=("json",), valued=("out", "samples")))
    check_override_names(args, "data", own=("samples", "out", "json"))
    for arg in args:
        key, sep, value = arg.partition("=")
        if key == "samples" and sep:
            opts.samples = _samples(value)
        elif key == "out" and sep and value:
            opts.out = value
        elif key == "json" and sep:
            opts.as_json = flag(value, "json")
        elif sep and (key == "dataset" or key.startswith("dataset.") or key in TRAINER_KEYS):
            opts.overrides.append(arg)
        else:
            raise UserError(f"'{arg}' is not an option of `cnnbench data`: it takes dataset=NAME, "
                            f"dataset.KEY=VALUE, {', '.join(k + '=...' for k in TRAINER_KEYS)}, "
                            f"samples=N, out=DIR and json=true, e.g. `cnnbench data "
                            f"dataset=cifar10 samples=4`.")
    return opts


def out_dir(out: str | None, dataset: str) -> Path:
    """The folder the files go to, made now (an unwritable place is an OSError naming it, which
    the CLI's error boundary shows as one paragraph)."""
    from cnnbench.run.stored_config import safe_name
    from cnnbench.rundir import require_folder
    from cnnbench.rundir.naming import stamped

    folder = Path(out).expanduser() if out else Path("outputs") / "data" / stamped(safe_name(dataset))
    require_folder(folder, "data")
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
    return folder


def write_files(folder: Path, s: dict, data, samples: int) -> dict[str, str]:
    """class_counts.png, samples.png and data.json (the summary with their paths)."""
    from cnnbench.commands.data.charts import class_counts_figure
    from cnnbench.commands.data.samples import MAX_CLASSES, samples_figure
    from cnnbench.evaluation.png import png_bytes
    from cnnbench.rundir import claim_outputs, write_bytes, write_text

    files = {"class_counts": folder / "class_counts.png", "samples": folder / "samples.png",
             "data": folder / "data.json"}
    writer = claim_outputs(folder, "data", [p.name for p in files.values()], _earlier_output)
    split = s["split"]
    title = s["dataset"] + (f" (val: trainer.val_split={split['val_split']:g}, trainer.seed="
                            f"{split['seed']})" if split["val_split"] else
                            " (trainer.val_split=0: no validation split)")
    write_bytes(files["class_counts"], png_bytes(class_counts_figure(
        s["class_counts"], s["classes"], title)), writer)
    write_bytes(files["samples"], png_bytes(samples_figure(data.train, s["classes"], samples,
                                                           s["dataset"])), writer)
    s["samples"] = {"per_class": samples, "split": "train",
                    "classes_shown": s["classes"][:MAX_CLASSES]}
    s["files"] = {k: str(v) for k, v in files.items()}
    write_text(files["data"], json.dumps(s, indent=2) + "\n", writer)
    return s["files"]


def _earlier_output(folder: Path) -> bool:
    """Whether `folder` holds what an earlier `cnnbench data` wrote (its data.json)."""
    from cnnbench.rundir import begins_with
    from cnnbench.rundir.stored_text import read_stored_json

    path = folder / "data.json"
    if not begins_with(path, b"{"):
        return False
    try:
        summary = read_stored_json(path)
    except (OSError, ValueError):  # StoredTextError is a ValueError
        return False
    return isinstance(summary, dict) and {"dataset", "files", "samples"} <= set(summary)


def describe(opts: DataOptions) -> tuple[dict, object]:
    """The summary and the data, for the options given (the config and its settings are
    checked before the loaders, and torch, are imported)."""
    from omegaconf import OmegaConf

    from cnnbench.settings.config_files import compose_checked
    from cnnbench.settings.trainer import TrainerSettings

    cfg = compose_checked(opts.overrides, "data", SHORT_USAGE)
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    from cnnbench.commands.data.overview import load_as_run, summary

    loaded = load_as_run(cfg, settings)
    return summary(cfg, settings, loaded), loaded.data


def run(args: Sequence[str], console: Console) -> int:
    if any(a in ("-h", "--help") for a in args):
        console.print(USAGE, highlight=False, markup=False)
        return 0
    opts = parse_args(args)
    s, data = describe(opts)
    folder = out_dir(opts.out, s["dataset"])
    try:
        write_files(folder, s, data, opts.samples)
    except OSError as err:
        raise UserError(f"Cannot write the dataset's files to {folder} ({err.strerror or err}). "
                        f"Choose another folder with out=DIR, or free space there.") from None
    if opts.as_json:
        print(json.dumps(s, indent=2))
    else:
        from cnnbench.commands.data.show import show

        show(console, s)
    return 0


def main(args: Sequence[str], console: Console) -> int:
    """The `cnnbench data` command: 0 when it is written (how else it ends is the CLI's error
    boundary's: a mistake is one paragraph and exit 2)."""
    return run(args, console)
