"""`cnnbench compare PATH [PATH...] [--out DIR]`: one table and four files for a set of runs."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.markup import escape

from ..errors import UserError
from .runs import RunRecord, load_runs
from .table import (differing_options, label, rich_table, sort_runs, write_csv,
                    write_markdown)

FILES = ("comparison.csv", "comparison.md", "comparison.png", "curves.png")


@dataclass
class Comparison:
    runs: list[RunRecord]
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def default_out_dir(paths: Sequence[Path]) -> Path:
    """A single sweep dir or outputs/: write there. Otherwise a new outputs/comparisons/<time>."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    return Path("outputs") / "comparisons" / time.strftime("%Y-%m-%d_%H-%M-%S")


def _write_new(path: Path, write) -> Path:
    """`write(tmp)` into a new file beside `path`, then renamed over it: whatever `path` was
    before (a link planted in a run directory, say), the data lands in the output folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would make it, not mkstemp's 0600
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def compare(paths: Sequence[str | Path], out_dir: str | Path | None = None) -> Comparison:
    """Read every run under `paths` and write the comparison files into `out_dir`."""
    roots = [Path(p) for p in paths]
    runs = sort_runs(load_runs(roots))
    out = Path(out_dir) if out_dir is not None else default_out_dir(roots)
    try:
        return _write_files(runs, roots, out)
    except OSError as err:
        raise UserError(
            f"The comparison files could not be written to {out}: "
            f"{err.strerror or type(err).__name__}"
            f"{f' ({err.filename})' if err.filename and str(err.filename) != str(out) else ''}. "
            f"Give a folder you can write to with --out DIR (it is created if missing), or "
            f"free space / fix the permissions of {out}.") from None


def _write_files(runs: list[RunRecord], roots: list[Path], out: Path) -> Comparison:
    from .figure_png import save_png
    from .plots import accuracy_vs_time_figure, curves_figure

    out.mkdir(parents=True, exist_ok=True)
    result = Comparison(runs, out)
    title = f"{len(runs)} run{'s' if len(runs) != 1 else ''} from {', '.join(map(str, roots))}"
    result.written.append(_write_new(out / "comparison.csv", lambda p: write_csv(runs, p)))
    result.written.append(_write_new(out / "comparison.md",
                                     lambda p: write_markdown(runs, p, title)))
    options = differing_options(runs)
    labels = [label(r, options) for r in runs]
    for name, make, why in (
            ("comparison.png", accuracy_vs_time_figure, "no run has a test accuracy yet"),
            ("curves.png", curves_figure, "no run has a history.csv with epochs")):
        fig = make(runs, labels)
        if fig is None:
            result.skipped.append(f"{name} ({why})")
        else:
            result.written.append(_write_new(out / name, lambda p: save_png(fig, p)))
    return result


def main(args: Sequence[str], console: Console) -> int:
    parser = argparse.ArgumentParser(
        prog="cnnbench compare",
        description="Compare runs: a table sorted by test accuracy, plus comparison.csv, "
                    "comparison.md, comparison.png (accuracy vs training time) and curves.png "
                    "(validation curves of every run). PATHs are run directories, sweep "
                    "directories (outputs/multirun/<sweep>) or outputs/ itself.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where to write the files (default: the one directory given, "
                             "else outputs/comparisons/<time>)")
    ns = parser.parse_args(list(args))
    try:
        result = compare(ns.paths, ns.out)
    except UserError as err:
        console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 2
    runs = result.runs
    console.print(rich_table(runs, f"{len(runs)} run{'s' if len(runs) != 1 else ''}",
                             console.width))
    unfinished = [r for r in runs if r.status != "completed"]
    if unfinished:
        console.print(f"{len(unfinished)} of {len(runs)} runs did not complete: "
                      + "; ".join(f"{r.name}: {r.status}" for r in unfinished), highlight=False)
    console.print(f"wrote {', '.join(p.name for p in result.written)} to {result.out_dir}",
                  highlight=False)
    for note in result.skipped:
        console.print(f"skipped {note}", highlight=False)
    return 0
