"""Which columns of a terminal table fit its width: minor columns are left out, in a stated
order, until the rest fits; a cell is never cropped (a cut number reads as another number)."""
from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len


def fit_columns(columns: list[str], rows: list[list[str]], width: int,
                drop_order: Sequence[str]) -> tuple[list[int], list[str]]:
    """The indices of the columns to show in `width` characters, and the names left out.
    `drop_order` names columns (or, ending in a space, column prefixes) from least to most
    needed; columns it does not name are always kept."""
    keep = list(range(len(columns)))
    dropped = []
    for prefix in drop_order:
        for i in [i for i in keep if columns[i] == prefix
                  or (prefix.endswith(" ") and columns[i].startswith(prefix))]:
            if table_width(columns, rows, keep) <= width:
                return keep, dropped
            keep.remove(i)
            dropped.append(columns[i])
    return keep, dropped


def table_width(columns: Sequence[str], rows: Sequence[Sequence[str]],
                keep: Sequence[int]) -> int:
    """The characters a SIMPLE_HEAD table without edge padding takes for the columns `keep`:
    each column as wide as its widest cell (in terminal cells: a wide character takes two),
    one space either side, one between columns."""
    widths = [max(cell_len(columns[i]), *(cell_len(r[i]) for r in rows)) for i in keep]
    return sum(widths) + 3 * len(widths) - 1


def _distinct(rows: Sequence[Sequence[str]], keys: Sequence[int]) -> int:
    return len({tuple(r[i] for i in keys) for r in rows})


def fit_keys(columns: list[str], rows: list[list[str]], width: int, keep: list[int],
             keys: Sequence[int]) -> tuple[list[int], list[str]]:
    """Leave out setting columns (`keys`, indices into `columns`) until the table fits `width`:
    first those without which the rows are still told apart, the least distinguishing
    (fewest values) first, then, while more than one is left, the least distinguishing ones.
    Returns the columns kept and the keys left out."""
    keep, dropped = list(keep), []
    while table_width(columns, rows, keep) > width:
        shown = [i for i in keys if i in keep]
        if len(shown) <= 1:
            break
        need = _distinct(rows, shown)
        spare = [i for i in shown if _distinct(rows, [j for j in shown if j != i]) == need]
        pool = spare or shown
        least = min(pool, key=lambda i: (len({r[i] for r in rows}),
                                         -max(len(columns[i]), *(len(r[i]) for r in rows)),
                                         -i))
        keep.remove(least)
        dropped.append(columns[least])
    return keep, dropped
