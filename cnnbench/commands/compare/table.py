"""One row per run, sorted by test accuracy: as a rich table (`cnnbench compare --runs`), the
per-run section of comparison.md and comparison_runs.csv."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cnnbench.commands.compare.fitting import fit_columns, table_width
from cnnbench.commands.compare.prose import ColourNote, wrapped
from cnnbench.commands.compare.runs import EXTRA_KEYS, OPTION_KEYS, RunRecord
from cnnbench.rundir.csv_cells import plain_row
from cnnbench.rundir.record import shown_text

FALLBACK_OPTIONS = ("model", "dataset")  # shown when no option differs between the runs


def sort_runs(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The ranked runs (completed, with a finite test accuracy and no metric that is not
    finite), highest test accuracy first; the others after them, unranked, in path order."""
    return sorted(runs, key=lambda r: (not r.in_statistics,
                                       -(r.acc or 0.0) if r.in_statistics else 0.0, str(r.path)))


def differing_options(runs: Sequence[RunRecord]) -> list[str]:
    """The options whose (known) values are not the same in every run."""
    keys = [k for k in OPTION_KEYS
            if len({repr(r.options.get(k)) for r in runs if r.options.get(k) is not None}) > 1]
    return keys or [k for k in FALLBACK_OPTIONS if any(r.options.get(k) for r in runs)]


def shift_keys(runs: Sequence[RunRecord]) -> list[str]:
    keys = {k for r in runs for k in r.metrics if k.startswith("shift/")}
    return sorted(keys, key=lambda k: int("".join(c for c in k if c.isdigit()) or 0))


def shorten(text: str, width: int = 44) -> str:
    """Keep both ends of a long name (a sweep's job dirs differ at the start and the end)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[-(width - 1 - head):]


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else ""


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else ""


def display_rows(runs: Sequence[RunRecord],
                 full_names: bool = True) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted cells, shared by the terminal table and comparison.md."""
    options, shifts = differing_options(runs), shift_keys(runs)
    columns = [*options, "status", "test acc", "loss", "macro F1",
               *[f"acc {k.split('/')[1]}" for k in shifts],
               "params", "train s", "img/s", "run"]
    rows = []
    for r in runs:
        m = r.metrics
        rows.append([*[str(r.options.get(k, "")) if r.options.get(k) is not None else ""
                       for k in options],
                     r.shown_status, _pct(m.get("test/acc")), _num(m.get("test/loss"), ".4f"),
                     _pct(m.get("test/macro_f1")), *[_pct(m.get(k)) for k in shifts],
                     _num(m.get("params"), ",.0f"), _num(m.get("train_seconds"), ",.1f"),
                     _num(m.get("images_per_s"), ",.0f"), r.name if full_names else r.short])
    return columns, rows


RUN_DROP_ORDER = ("img/s", "macro F1", "loss", "acc ", "params", "train s", "seed", "lr")
OPTION_CELL = 24  # the most characters of an option's value the terminal table shows
NUMERIC = {"test acc", "loss", "macro F1", "params", "train s", "img/s"}


def terminal_rows(runs: Sequence[RunRecord]) -> tuple[list[str], list[list[str]], list[str]]:
    """Column names, cells and run names of the terminal table: `display_rows` with each
    option's value kept to OPTION_CELL characters and the status brief (how many metrics are
    not finite or out of range, not which: the lines under the table name them), so that no
    text cell can crowd out the numbers."""
    columns, rows = display_rows(runs, full_names=False)
    status = columns.index("status")
    names = [shorten(cells[-1], 32) for cells in rows]
    rows = [[shorten(c, OPTION_CELL) for c in cells[:status]] + [run.brief_status]
            + cells[status + 1:-1] for run, cells in zip(runs, rows)]
    return columns[:-1], rows, names


def rich_table(runs: Sequence[RunRecord], title: str, width: int = 200) -> Group:
    """The terminal table and what it means: the run column when there is room, minor columns
    left out (and named) when `width` has no room for them; a cell is never cropped, a number
    never cut: a terminal too narrow for the rest gets one paragraph per run."""
    columns, rows, names = terminal_rows(runs)
    keep, dropped = fit_columns(columns, rows, width, RUN_DROP_ORDER) if rows else (
        list(range(len(columns))), [])
    if rows and table_width(columns, rows, keep) > width:
        return _paragraphs(runs, title, columns, rows, names)
    columns, rows = [columns[i] for i in keep], [[r[i] for i in keep] for r in rows]
    needed = table_width(columns, rows, range(len(columns))) + 1
    caption = "sorted by test accuracy (runs that did not complete, or with a metric that is not "\
              "finite or out of its range, last: unranked)"
    if any(c.startswith("acc ") for c in columns):
        caption += "; acc Npx: test accuracy with the images shifted N px right and down"
    if any(r.invalid for r in runs):
        caption += "; the metrics not finite or out of range are named below"
    if needed + min(12, max(map(cell_len, names))) + 3 <= width:
        columns, rows = ["run", *columns], [[n, *cells] for n, cells in zip(names, rows)]
    else:
        caption += "; run directories: comparison.md (or a wider terminal)"
    if dropped:
        caption += f"; left out at {width} columns: {', '.join(dropped)} (comparison.md)"
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in columns:
        right = col in NUMERIC or col.startswith("acc ")
        table.add_column(col, justify="right" if right else "left", overflow="fold",
                         no_wrap=col != "run")
    best = next((i for i, r in enumerate(runs) if r.in_statistics), None)
    for i, (run, cells) in enumerate(zip(runs, rows)):
        # Text, not markup: names and options come from the runs' files
        table.add_row(*map(Text, cells), style="bold green" if i == best else _style(run))
    return Group(table, wrapped(caption + "."),
                 ColourNote("Bold green: the best run; yellow: not finished; dim: pruned by a "
                            "search; red: failed."))


def _paragraphs(runs: Sequence[RunRecord], title: str, columns: list[str],
                rows: list[list[str]], names: list[str]) -> Group:
    """One paragraph per run, for a terminal too narrow for the table: '1. job 3 (lr=0.1):
    completed; test acc 97.40%, loss 0.0912, ...'."""
    status = columns.index("status")
    best = next((r for r in runs if r.in_statistics), None)
    out: list = [Text(title, style="italic")]
    for number, (run, name, cells) in enumerate(zip(runs, names, rows), 1):
        options = ", ".join(f"{c}={v}" for c, v in zip(columns[:status], cells) if v)
        numbers = ", ".join(f"{c} {v}" for c, v in zip(columns[status + 1:], cells[status + 1:])
                            if v)
        out.append(wrapped(f"{number}. {name}{f' ({options})' if options else ''}: "
                           f"{cells[status]}{'; ' + numbers if numbers else ''}",
                           "bold green" if run is best else _style(run)))
    return Group(*out)


UNFINISHED = ("interrupted", "running", "starting", "not started")


def _style(run: RunRecord) -> str | None:
    """Plain for a completed run, yellow for one that has not finished, red for one that failed
    or diverged or holds a metric that is not finite."""
    if run.status == "completed" and not run.not_finite:
        return None
    if run.status == "pruned":  # a search stopped it early on purpose: not a failure
        return "dim"
    return "yellow" if run.status in UNFINISHED else "red"


def run_markdown(runs: Sequence[RunRecord]) -> list[str]:
    """The per-run table as Markdown lines, then the reason of each run that did not complete."""
    columns, rows = display_rows(runs)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---" if c in ("run", "status", *OPTION_KEYS) else "---:"
                            for c in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    failed = [r for r in runs if r.status != "completed" and r.reason]
    if failed:
        lines += ["", "Runs that did not complete:", ""]
        lines += [f"- `{r.name}` ({r.status}): {esc(r.reason)}" for r in failed]
    unfinite = [r for r in runs if r.status == "completed" and r.not_finite]
    if unfinite:
        lines += ["", "Runs left unranked, with metrics that are NaN or infinite:", ""]
        lines += [f"- `{r.name}`: {', '.join(r.not_finite)}" for r in unfinite]
    impossible = [r for r in runs if r.status == "completed" and r.out_of_range]
    if impossible:
        lines += ["", "Runs left unranked, with metrics outside their range (left out):", ""]
        lines += [f"- `{r.name}`: {esc(', '.join(r.out_of_range.values()))}"
                  for r in impossible]
    return lines


def _extra_cells(run: RunRecord, keys: Sequence[str]) -> list[Any]:
    cells = []
    for key in keys:
        value = run.extras.get(key)
        if key == "published":
            cells += [(value or {}).get("value", ""), (value or {}).get("metric", "")]
        else:
            cells.append("" if value is None else value)
    return cells


def write_csv(runs: Sequence[RunRecord], path: Path,
              group_of: Mapping[Path, str] | None = None) -> Path:
    """Raw values, every option and metric, one row per run (for spreadsheets and pandas),
    with the group of seeds each run belongs to; the fields newer runs add to metrics.json
    (published, time to target, energy) when any run has them."""
    metric_keys = sorted({k for r in runs for k in r.metrics},
                         key=lambda k: (k.startswith("shift/"), k))
    extras = [k for k in EXTRA_KEYS if any(k in r.extras for r in runs)]
    extra_columns = [c for k in extras
                     for c in (("published_value", "published_metric") if k == "published"
                               else (k,))]
    columns = ["run", "path", "group", "status", *OPTION_KEYS, *metric_keys, *extra_columns,
               "reason"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(plain_row(columns))
        for r in runs:
            writer.writerow(plain_row([r.name, shown_text(r.path), (group_of or {}).get(r.path, ""),
                                       r.status, *[r.options.get(k, "") for k in OPTION_KEYS],
                                       *[r.metrics.get(k, "") for k in metric_keys],
                                       *_extra_cells(r, extras),
                                       "; ".join(t for t in (r.reason, r.problems) if t)]))
    return path
