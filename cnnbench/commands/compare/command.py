"""`cnnbench compare PATH [PATH...] [out=DIR] [runs=true]`: one table (a row per group of runs that
differ only in their seed) and five files for a set of runs."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.console import Group as RichGroup

from cnnbench.commands.compare.evaluations import (
    NOTE,
    evaluation_markdown,
    evaluation_table,
    split_evaluations,
)
from cnnbench.commands.compare.group_csv import write_group_csv
from cnnbench.commands.compare.group_table import write_markdown
from cnnbench.commands.compare.group_view import group_report
from cnnbench.commands.compare.groups import Group, group_runs
from cnnbench.commands.compare.prose import wrapped
from cnnbench.commands.compare.runs import RunRecord, load_runs
from cnnbench.commands.compare.table import rich_table, sort_runs, write_csv
from cnnbench.errors import UserError
from cnnbench.faults import shown_path
from cnnbench.rundir import (
    PRUNED,
    UNREADABLE,
    begins_with,
    claim_outputs,
    require_folder,
    write_with,
)
from cnnbench.settings.options import flag, normalized

FILES = ("comparison.csv", "comparison_runs.csv", "comparison.md", "comparison.png",
         "curves.png")


@dataclass
class Comparison:
    runs: list[RunRecord]                       # the training runs
    groups: list[Group]
    out_dir: Path
    evaluations: list[RunRecord] = field(default_factory=list)  # `cnnbench eval` outputs
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def default_out_dir(paths: Sequence[Path]) -> Path:
    """A single sweep dir or outputs/: write there. Otherwise a new outputs/comparisons/<time>."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0]
    return Path("outputs") / "comparisons" / time.strftime("%Y-%m-%d_%H-%M-%S")


def earlier_comparison(folder: Path) -> bool:
    """Whether `folder` holds what an earlier `cnnbench compare` wrote (its comparison_runs.csv)."""
    return begins_with(folder / "comparison_runs.csv", b"run,path,group,status")


def sweep_table(sweep_dir: Path, width: int):
    """The group table of a sweep's runs (no files written), for the end of the sweep; None
    when no job completed."""
    runs, _ = split_evaluations(sort_runs(load_runs([Path(sweep_dir)])))
    groups = [g for g in group_runs(runs) if g.stats.acc.mean is not None]
    if not groups:
        return None
    table = group_report(groups, f"{_count(len(runs), 'job')} in {_count(len(groups), 'group')}",
                         width)
    repeats = repeated_line(runs)
    return RichGroup(table, wrapped(repeats)) if repeats else table


def compare(paths: Sequence[str | Path], out_dir: str | Path | None = None) -> Comparison:
    """Read every run under `paths` and write the comparison files into `out_dir`; the
    evaluations among them are kept apart from the training runs."""
    roots = [Path(p) for p in paths]
    runs, evaluations = split_evaluations(sort_runs(load_runs(roots)))
    out = Path(out_dir) if out_dir is not None else default_out_dir(roots)
    require_folder(out, "compare")
    try:
        return _write_files(runs, evaluations, roots, out)
    except OSError as err:
        raise UserError(
            f"The comparison files could not be written to {shown_path(out)}: "
            f"{err.strerror or type(err).__name__}"
            f"{f' ({shown_path(err.filename)})' if err.filename and str(err.filename) != str(out) else ''}. "
            f"Give a folder you can write to with out=DIR (it is created if missing), or "
            f"free space / fix the permissions of {shown_path(out)}.") from None


def _write_files(runs: list[RunRecord], evaluations: list[RunRecord], roots: list[Path],
                 out: Path) -> Comparison:
    from cnnbench.commands.compare.curves import curves_figure
    from cnnbench.commands.compare.figure_png import save_png
    from cnnbench.commands.compare.plots import accuracy_vs_time_figure

    out.mkdir(parents=True, exist_ok=True)
    writer = claim_outputs(out, "compare", FILES, earlier_comparison)
    groups = group_runs(runs)
    result = Comparison(runs, groups, out, evaluations)
    group_of = {r.path: g.label for g in groups for r in g.runs}
    title = f"{_count(len(runs), 'run')} in {_count(len(groups), 'group')}"
    if evaluations:
        title += f" and {_count(len(evaluations), 'evaluation')}"
    title += f" from {', '.join(map(str, roots))}"
    appendix = ["", "## Evaluations", "", *evaluation_markdown(evaluations, runs)] \
        if evaluations else []
    for name, write in (
            ("comparison.csv", lambda p: write_group_csv(groups, p)),
            ("comparison_runs.csv", lambda p: write_csv(runs, p, group_of)),
            ("comparison.md", lambda p: write_markdown(groups, runs, p, title, appendix))):
        result.written.append(write_with(out / name, write, writer))
    for name, make, why in (
            ("comparison.png", accuracy_vs_time_figure, "no run has a test accuracy yet"),
            ("curves.png", curves_figure, "no run has a history.csv with epochs")):
        fig = make(groups)
        if fig is None:
            result.skipped.append(f"{name} ({why})")
        else:
            result.written.append(write_with(out / name, lambda p, fig=fig: save_png(fig, p), writer))
    return result


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def repeated_line(runs: Sequence[RunRecord]) -> str | None:
    """The runs left out because they repeat the seed of another run of their experiment."""
    repeated = [r for r in runs if r.repeats]
    if not repeated:
        return None
    return (f"{_count(len(repeated), 'completed run')} "
            f"{'repeats' if len(repeated) == 1 else 'repeat'} the seed of another run of the "
            f"same experiment (the same run again, not another sample: left out of the "
            f"statistics; sweep trainer.seed=0,1,2 for samples): "
            + "; ".join(f"{r.short or r.name} (seed {r.options.get('seed')}, as {r.repeats})"
                        for r in repeated))


def left_out_lines(runs: Sequence[RunRecord]) -> list[str]:
    """How many runs the statistics leave out, and why (each run named with its status)."""
    lines = []
    pruned = [r for r in runs if r.status == PRUNED]
    if pruned:  # a search stopped them early on purpose: apart from the runs that went wrong
        lines.append(f"{_count(len(pruned), 'run')} pruned by a search (stopped early, after "
                     f"fewer epochs than the others: unranked and left out of the statistics): "
                     + "; ".join(f"{r.short or r.name} after epoch "
                                 f"{r.metrics.get('epochs_run', '?')}" for r in pruned))
    unfinished = [r for r in runs if r.status not in ("completed", PRUNED)]
    if unfinished:
        lines.append(f"{len(unfinished)} of {len(runs)} runs did not complete and are left out "
                     f"of the statistics: "
                     + "; ".join(f"{r.short or r.name}: {r.status}"
                                 + (f" ({r.reason})" if r.status == UNREADABLE and r.reason
                                    else "") for r in unfinished))
    repeats = repeated_line(runs)
    if repeats:
        lines.append(repeats)
    no_acc = [r for r in runs if r.status == "completed" and r.acc is None and not r.invalid]
    if no_acc:
        lines.append(f"{_count(len(no_acc), 'completed run')} without a test accuracy "
                     f"(left out of the statistics): "
                     + "; ".join(r.short or r.name for r in no_acc))
    for what, why in (("that are NaN or infinite", lambda r: r.not_finite),
                      ("outside their range", lambda r: list(r.out_of_range.values()))):
        flagged = [r for r in runs if r.status == "completed" and why(r)]
        if flagged:
            lines.append(f"{_count(len(flagged), 'completed run')} with metrics {what} (left "
                         f"out of the statistics and unranked): "
                         + "; ".join(f"{r.short or r.name}: {', '.join(why(r))}"
                                     for r in flagged))
    return lines


USAGE = """usage: cnnbench compare PATH... [out=DIR] [runs=true]

Compares runs: runs that differ only in trainer.seed are one row (n, mean, std
and 95% confidence interval of the test accuracy, Welch's t-test against the
best row), best first. Writes comparison.csv (one row per group),
comparison_runs.csv (one row per run), comparison.md, comparison.png (accuracy
vs training time, with error bars) and curves.png (validation curves, mean per
group). PATHs are run directories, sweep directories (outputs/multirun/<sweep>)
or outputs/ itself. Outputs of `cnnbench eval` are listed apart, as evaluations
(the checkpoint and its accuracy), never as runs.
  out=DIR      where to write the files (default: the one directory given, else
               outputs/comparisons/<time>)
  runs=true    also print one row per run (comparison.md always has them)"""


@dataclass
class CompareArgs:
    paths: list[str]
    out: str | None = None
    runs: bool = False


def parse_args(args: Sequence[str]) -> CompareArgs:
    parsed = CompareArgs([])
    for arg in normalized(args, flags=("runs",), valued=("out",)):
        key, sep, value = arg.partition("=")
        if not sep:
            if arg.startswith("-"):
                raise UserError(f"Unknown option {arg} for `cnnbench compare`.\n{USAGE}")
            parsed.paths.append(arg)
        elif key == "out":
            parsed.out = value
        elif key == "runs":
            parsed.runs = flag(value, key)
        else:
            parsed.paths.append(arg)  # a run directory whose name holds '=' (a sweep job)
    if not parsed.paths:
        raise UserError(f"`cnnbench compare` needs at least one PATH.\n{USAGE}")
    return parsed


def main(args: Sequence[str], console: Console) -> int:
    if any(a in ("-h", "--help", "help") for a in args):
        console.print(USAGE, highlight=False, markup=False)
        return 0
    ns = parse_args(args)
    result = compare(ns.paths, ns.out)
    runs, groups = result.runs, result.groups
    if groups:
        console.print(group_report(
            groups, f"{_count(len(runs), 'run')} in {_count(len(groups), 'group')}",
            console.width))
    else:
        console.print("no training runs to compare", highlight=False)
    if ns.runs and runs:
        console.print(rich_table(runs, _count(len(runs), "run"), console.width))
    if result.evaluations:
        console.print(evaluation_table(result.evaluations, runs, console.width))
        console.print(wrapped(NOTE))
    for line in left_out_lines(runs):  # names and reasons from the runs' files: Text, no markup
        console.print(wrapped(line))
    wrote = f"wrote {', '.join(p.name for p in result.written)} to {result.out_dir}"
    # wrapped between words, unless the folder's path alone is wider than the terminal
    console.print(wrapped(wrote) if len(str(result.out_dir)) < console.width else wrote,
                  highlight=False, markup=False)
    for note in result.skipped:
        console.print(f"skipped {note}", highlight=False)
    return 0
