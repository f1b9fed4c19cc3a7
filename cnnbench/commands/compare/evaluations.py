"""Evaluations (`cnnbench eval` of a checkpoint, metrics.json "kind": "eval") are not training
runs: compare shows them apart, in a short table of their own that names the checkpoint each
evaluated and the accuracy it measured, and leaves them out of the groups, the ranking, the seed
statistics, comparison.csv, comparison_runs.csv and the pictures. The run an evaluation
evaluated keeps its own test metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from rich import box
from rich.console import Group as Renderables
from rich.table import Table
from rich.text import Text

from cnnbench.commands.compare import cells
from cnnbench.commands.compare.fitting import table_width
from cnnbench.commands.compare.prose import wrapped
from cnnbench.commands.compare.runs import RunRecord
from cnnbench.commands.compare.table import shorten
from cnnbench.rundir import CHECKPOINT_DIR, COMPLETED

COLUMNS = ("evaluation", "checkpoint", "dataset", "test acc", "status")
NOTE = ("Evaluations (`cnnbench eval` of a checkpoint) are shown apart: they are not training "
        "runs, so they are in no group, ranking or statistic of the comparison.")


def split_evaluations(runs: Sequence[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    """(the training runs, the evaluations), each in the order given."""
    return [r for r in runs if not r.is_evaluation], [r for r in runs if r.is_evaluation]


def evaluated_run(evaluation: RunRecord, runs: Sequence[RunRecord]) -> RunRecord | None:
    """The compared run whose checkpoint (a file in its checkpoints/ folder, or the run
    directory itself) the evaluation evaluated; None when it is not among `runs`."""
    if not evaluation.checkpoint:
        return None
    path = Path(evaluation.checkpoint)
    candidates = {path, path.parent.parent if path.parent.name == CHECKPOINT_DIR else path}
    found = {c.resolve() for c in candidates}
    return next((r for r in runs if r.path.resolve() in found), None)


def checkpoint_text(evaluation: RunRecord, runs: Sequence[RunRecord]) -> str:
    """'job 3: best.pt (epoch 5)' for a checkpoint of a compared run, else its path."""
    epoch = f" (epoch {evaluation.checkpoint_epoch})" \
        if evaluation.checkpoint_epoch is not None else ""
    if not evaluation.checkpoint:
        return "?"
    run = evaluated_run(evaluation, runs)
    if run is None:
        return evaluation.checkpoint + epoch
    path = Path(evaluation.checkpoint)
    inside = path.name if path.resolve() != run.path.resolve() else "run directory"
    return f"{run.short or run.name}: {inside}{epoch}"


def evaluation_rows(evaluations: Sequence[RunRecord], runs: Sequence[RunRecord],
                    full_names: bool = True) -> tuple[list[str], list[list[str]]]:
    """Column names and cells of the evaluations table (status only when one did not
    complete)."""
    with_status = any(e.status != COMPLETED for e in evaluations)
    columns = [c for c in COLUMNS if c != "status" or with_status]
    rows = []
    for e in evaluations:
        row = [e.name if full_names else (e.short or e.name), checkpoint_text(e, runs),
               str(e.options.get("dataset") or ""), cells.pct(e.acc)]
        rows.append(row + ([e.shown_status] if with_status else []))
    return columns, rows


def evaluation_markdown(evaluations: Sequence[RunRecord], runs: Sequence[RunRecord]) -> list[str]:
    columns, rows = evaluation_rows(evaluations, runs)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    return [NOTE, "", "| " + " | ".join(columns) + " |",
            "|" + "|".join("---:" if c == "test acc" else "---" for c in columns) + "|",
            *["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]]


def _keep_end(text: str, width: int) -> str:
    """A checkpoint cut at its start: its file name and epoch are what tell it apart."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


# the cuts tried, in order, while the table is too wide: (column, narrowest, how)
CUTS = ((0, 16, shorten), (1, 24, _keep_end), (0, 10, shorten), (1, 14, _keep_end))


def evaluation_table(evaluations: Sequence[RunRecord], runs: Sequence[RunRecord],
                     width: int) -> Table | Renderables:
    """The evaluations as a terminal table `width` wide: the evaluation's name and the
    checkpoint are shortened to fit (the name in the middle, the checkpoint at its start), the
    numbers never; a terminal too narrow for that gets one paragraph per evaluation."""
    columns, rows = evaluation_rows(evaluations, runs, full_names=False)
    title = f"evaluations ({len(evaluations)})"
    everything = range(len(columns))
    for i, narrowest, cut in CUTS:
        over = table_width(columns, rows, everything) - width
        if over <= 0:
            break
        widest = max(len(r[i]) for r in rows)
        rows = [[cut(c, max(narrowest, len(columns[i]), widest - over)) if j == i else c
                 for j, c in enumerate(r)] for r in rows]
    if table_width(columns, rows, everything) > width:
        _, rows = evaluation_rows(evaluations, runs, full_names=False)
        return Renderables(Text(title, style="italic"), *[
            wrapped(f"{r[0]}: {r[1]}, " + ", ".join(c for c in r[2:] if c)) for r in rows])
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in columns:
        table.add_column(c, justify="right" if c == "test acc" else "left", no_wrap=True)
    for row in rows:
        table.add_row(*map(Text, row))  # Text, not markup: names and paths from the runs' files
    return table
