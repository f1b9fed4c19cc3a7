"""Checks of single values shared by several config groups, each a one-paragraph UserError."""
from __future__ import annotations

from typing import Any

from cnnbench.errors import UserError


def check_fraction(key: str, value: Any, what: str, nullable: bool = True) -> None:
    """A UserError unless `value` is a number in (0, 1] (or null, when `nullable`), in one
    paragraph; a percentage such as 99 gets "did you mean 0.99?"."""
    if value is None and nullable:
        return
    rule = (f"it must be {what} as a fraction in (0, 1], e.g. {key}=0.99"
            f"{', or null' if nullable else ''}.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{key}={value!r} is not valid: {rule}")
    if not 0 < value <= 1:
        hint = (f" It is a fraction, not a percentage: did you mean {key}={value / 100:g}?"
                if 1 < value <= 100 else "")
        raise UserError(f"{key}={value!r} is not valid: {rule}{hint}")
