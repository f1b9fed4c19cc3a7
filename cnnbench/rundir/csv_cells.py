"""Cells of the CSV files cnnbench writes, as plain text a spreadsheet never runs.

Class names, run names, paths, options and error messages come from the user. A spreadsheet
opening a CSV runs a cell that starts with = + - or @ as a formula (and a leading tab or carriage
return can hide one), so such a text cell gets a leading apostrophe, as OWASP recommends against
CSV injection: `=HYPERLINK("http://x","y")` is written as `'=HYPERLINK("http://x","y")`.
Numbers are left as they are, whether Python numbers or text that is a plain number (-0.5, 1e-3),
so numeric columns stay numeric.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def plain_cell(value: Any) -> Any:
    """`value` as a CSV cell no spreadsheet reads as a formula (see the module docstring)."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    return value if _NUMBER.fullmatch(value) else "'" + value


def plain_row(cells: Iterable[Any]) -> list[Any]:
    """A row for `csv.writer`, every cell through `plain_cell`."""
    return [plain_cell(cell) for cell in cells]


def plain_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for `csv.DictWriter`, every value through `plain_cell` (the keys are the header)."""
    return {key: plain_cell(value) for key, value in row.items()}
