"""Which columns of a terminal table fit its width: minor columns are left out, in a stated
order, until the rest fits; a cell is never cropped (a cut number reads as another number)."""
from __future__ import annotations

from typing import Sequence


def fit_columns(columns: list[str], rows: list[list[str]], width: int,
                drop_order: Sequence[str]) -> tuple[list[int], list[str]]:
    """The indices of the columns to show in `width` characters, and the names left out.
    `drop_order` names columns (or, ending in a space, column prefixes) from least to most
    needed; columns it does not name are always kept."""
    need = lambda i: max(len(columns[i]), *(len(r[i]) for r in rows)) + 3  # noqa: E731 (pad, rule)
    keep = list(range(len(columns)))
    dropped = []
    for prefix in drop_order:
        for i in [i for i in keep if columns[i] == prefix
                  or (prefix.endswith(" ") and columns[i].startswith(prefix))]:
            if sum(need(i) for i in keep) <= width:
                return keep, dropped
            keep.remove(i)
            dropped.append(columns[i])
    return keep, dropped
