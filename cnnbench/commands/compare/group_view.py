"""The group table as the terminal shows it, readable at any width: what fits is chosen by
priority (the settings that tell the rows apart, the test accuracy with its interval, n, the
verdicts; then the minor columns), setting names are abbreviated (and the abbreviations
explained), what is left out is said once, and no cell is ever broken. A terminal too narrow
even for that gets one short paragraph per group instead of a table."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from rich import box
from rich.console import Group as Renderables
from rich.table import Table
from rich.text import Text

from cnnbench.commands.compare.abbrev import legend
from cnnbench.commands.compare.fitting import fit_columns, fit_keys, table_width
from cnnbench.commands.compare.group_table import (
    NUMERIC,
    group_columns,
    notes,
    setting_keys,
    short_names,
)
from cnnbench.commands.compare.groups import Group
from cnnbench.commands.compare.prose import ColourNote, wrapped

# left out of the terminal table, in this order, while it is wider than the terminal (the
# settings, n, test acc, CI95, vs best and verdict are left out last, or never)
DROP_ORDER = ("img/s", "loss", "macro F1", "acc ", "params", "std", "J/pt", "energy J",
              "published", "left out", "to target", "train s", "seeds")
PARAGRAPH = ("n", "test acc", "CI95", "vs best", "verdict")  # a group in a narrow terminal


@dataclass
class Layout:
    """The columns the terminal shows (indices into the full table) and what it leaves out."""
    headers: list[str]                  # the column names, settings abbreviated
    rows: list[list[str]]
    keep: list[int]
    left_out: list[str] = field(default_factory=list)  # full names
    fits: bool = True                   # False: one paragraph per group


def layout(groups: Sequence[Group], width: int) -> tuple[Layout, dict[str, str]]:
    """Which columns of the group table fit `width`, and the settings' short names."""
    columns, rows = group_columns(groups)
    keys = [k for k in setting_keys(groups) if k in columns]
    short = short_names(groups)
    headers = [short[c] if i < len(keys) else c for i, c in enumerate(columns)]
    if not rows:
        return Layout(headers, rows, list(range(len(headers)))), short
    keep, dropped = fit_columns(headers, rows, width, DROP_ORDER)
    keep, dropped_keys = fit_keys(headers, rows, width, keep, range(len(keys)))
    full = {short[k]: k for k in keys}
    result = Layout(headers, rows, keep, [*[full.get(d, d) for d in dropped_keys], *dropped])
    if table_width(headers, rows, keep) > width:
        shown = [*range(len(keys)), *[i for i, c in enumerate(headers) if c in PARAGRAPH]]
        result.keep, result.fits = shown, False
        result.left_out = [c for i, c in enumerate(columns) if i not in shown]
    return result, short


def _table(groups: Sequence[Group], view: Layout, title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i in view.keep:
        right = view.headers[i] in NUMERIC or view.headers[i].startswith("acc ")
        table.add_column(Text(view.headers[i]), justify="right" if right else "left",
                         no_wrap=True)
    for g, cells in zip(groups, view.rows):
        style = "bold green" if g.stats.best else None if g.stats.acc.n else "yellow"
        # Text, not markup: the settings and notes come from the runs' files
        table.add_row(*[Text(cells[i]) for i in view.keep], style=style)
    return table


def _paragraphs(groups: Sequence[Group], view: Layout, title: str, keys: int) -> list:
    """One paragraph per group: its number and settings, then '97.40% (CI95 96.90–97.90),
    n=3, p=0.012'."""
    out = [Text(title, style="italic")]
    for number, (g, cells) in enumerate(zip(groups, view.rows), 1):
        cell = {view.headers[i]: cells[i] for i in view.keep[keys:]}
        settings = ", ".join(f"{view.headers[i]}={cells[i]}" for i in view.keep[:keys])
        numbers = [cell.get("test acc", "")
                   + (f" (CI95 {cell['CI95']})" if cell.get("CI95") else ""),
                   f"n={cell.get('n', '')}", cell.get("vs best", ""), cell.get("verdict", "")]
        style = "bold green" if g.stats.best else None
        out.append(wrapped(f"{number}. {settings}: {', '.join(n for n in numbers if n)}", style))
    return out


def group_report(groups: Sequence[Group], title: str, width: int = 200) -> Renderables:
    """The group table (or its paragraphs), the short names of the settings it shows, what it
    leaves out, and what its columns mean, all within `width` characters where they can be;
    the colours are explained only when they are shown."""
    view, short = layout(groups, width)
    keys = len(short)
    parts: list = [_table(groups, view, title) if view.fits
                   else Renderables(*_paragraphs(groups, view, title, keys))]
    shown_keys = [k for i, k in enumerate(short) if i in view.keep]  # the keys come first
    if names := legend(short, shown_keys):
        parts.append(wrapped(f"settings: {names}"))
    if view.left_out:
        parts.append(wrapped(f"left out at {width} columns: {', '.join(view.left_out)}; widen "
                             f"the terminal or read comparison.md or comparison.csv"))
    parts.append(wrapped(" ".join(notes(groups, [view.headers[i] for i in view.keep]))))
    parts.append(ColourNote("Bold green: the best group; yellow: a group with no run in the "
                            "statistics."))
    return Renderables(*parts)
