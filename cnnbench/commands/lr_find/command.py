"""`cnnbench lr-find [train overrides] [start_lr=] [end_lr=] [num_steps=] [out=DIR]`.

Builds the run `cnnbench train` would start with the same overrides (run/build.py's
`assemble`: its model, optimizer, loss, data, device and AMP), runs the range test
(engine/lr_range.py) on it, prints the suggested rate and writes lr_find.png and lr_find.csv.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from rich.console import Console
from rich.markup import escape

from cnnbench.commands.lr_find.options import SHORT_USAGE, USAGE, LrFindOptions, parse_args
from cnnbench.errors import UserError

PNG, CSV = "lr_find.png", "lr_find.csv"


@dataclass
class Probe:
    """The run's config, checked, and its parts once built as train builds them."""

    cfg: Any
    settings: Any  # TrainerSettings
    options: dict[str, Any]
    parts: Any = None  # run.build.Parts


def composed(opts: LrFindOptions) -> tuple[Any, dict[str, str]]:
    """The train config of the overrides (Hydra's own node left out) and the groups chosen."""
    from omegaconf import open_dict

    from cnnbench.settings.config_files import compose_checked

    cfg = compose_checked(opts.overrides, "lr-find", SHORT_USAGE, return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if isinstance(v, str)}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


@contextlib.contextmanager
def config_mistakes() -> Iterator[None]:
    """A config that does not resolve (a key removed, a value of the wrong type): one paragraph."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        yield
    except OmegaConfBaseException as err:
        raise UserError(f"The composed config is not valid: {str(err).splitlines()[0]}. Check "
                        f"the overrides ({SHORT_USAGE})") from None


def checked(opts: LrFindOptions) -> Probe:
    """The run's config and settings, every value checked, before anything is built (what
    needs no torch before torch is imported: run.config_checks)."""
    from cnnbench.run.config_checks import check_config

    cfg, choices = composed(opts)
    with config_mistakes():
        settings = check_config(cfg).trainer
    from cnnbench.run.lr_auto import with_lr
    from cnnbench.run.provenance import run_options

    with config_mistakes():
        options = run_options(choices, cfg)
        probed = with_lr(cfg, opts.start_lr)  # the test sets the lr of every step itself
    return Probe(probed, settings, options)


def build(probe: Probe, console: Console) -> Any:
    """Everything the test trains, built as `cnnbench train` builds it."""
    from cnnbench.engine.distributed import DistInfo
    from cnnbench.run.build import assemble

    def note(text: str, kind: str = "note") -> None:
        console.print(f"[bold yellow]{kind}:[/] {escape(text)}", highlight=False)

    with config_mistakes():
        return assemble(probe.cfg, probe.settings, DistInfo(), model_name=probe.options["model"],
                        note=note)


def out_folder(opts: LrFindOptions, options: dict[str, Any]) -> Path:
    from cnnbench.run.stored_config import safe_name
    from cnnbench.rundir.naming import new_run_id

    if opts.out:
        return Path(opts.out).expanduser()
    name = "_".join([time.strftime("%H-%M-%S"), safe_name(str(options["model"])),
                     safe_name(str(options["dataset"])), new_run_id()])
    return Path("outputs") / "lr_find" / time.strftime("%Y-%m-%d") / name


def claim(folder: Path) -> Any:
    """The writer of the two files, checked before anything is built: files already there (an
    earlier test's included) are never replaced."""
    from cnnbench.rundir import claim_outputs

    there = [name for name in (PNG, CSV) if os.path.lexists(folder / name)]
    if there:
        raise UserError(f"{folder} already holds {' and '.join(there)}, and cnnbench lr-find "
                        f"never replaces files: give it a new folder with out=DIR, or leave "
                        f"out= off for a new one under outputs/lr_find/.")
    return claim_outputs(folder, "lr-find", (PNG, CSV), lambda _folder: False)


def csv_text(test: Any) -> str:
    def cell(x: float) -> str:  # an overflowed loss: an empty cell, as in compare's CSV
        return repr(x) if math.isfinite(x) else ""

    rows = ["lr,loss,smoothed_loss"]
    rows += [f"{lr!r},{cell(loss)},{cell(smooth)}"
             for lr, loss, smooth in zip(test.lrs, test.losses, test.smoothed)]
    return "\n".join(rows) + "\n"


def run(args: Sequence[str], console: Console) -> int:
    """The range test's exit code; the command line is checked before torch is imported."""
    opts = parse_args(args)
    probe = checked(opts)
    from cnnbench.commands.lr_find.picture import lr_find_png
    from cnnbench.commands.lr_find.report import report
    from cnnbench.engine.lr_range import range_test
    from cnnbench.engine.lr_suggestion import suggest
    from cnnbench.rundir import write_bytes, write_text

    folder = out_folder(opts, probe.options)
    writer = claim(folder)
    parts = probe.parts = build(probe, console)
    test = range_test(parts.model, parts.fit.optimizer, parts.fit.loss_fn, parts.runtime,
                      parts.loaders["train"], start_lr=opts.start_lr, end_lr=opts.end_lr,
                      num_steps=opts.num_steps, scaler=parts.scaler, count=parts.graphs.count)
    found = suggest(test.lrs, test.smoothed)
    title = f"{probe.options['model']} on {probe.options['dataset']}, {probe.options['optimizer']}"
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / CSV, csv_text(test), writer)
    write_bytes(folder / PNG, lr_find_png(test, found, f"lr-find: {title}"), writer)
    report(console, opts, probe, test, found, folder)
    return 0


def main(args: Sequence[str], console: Console) -> int:
    """The `cnnbench lr-find` command: 0 once its files are written (how else it ends is the
    CLI's error boundary's: a mistake is one paragraph and exit 2)."""
    if any(a in ("-h", "--help", "help") for a in args):
        console.print(USAGE, highlight=False, markup=False, soft_wrap=True)
        return 0
    return run(args, console)
