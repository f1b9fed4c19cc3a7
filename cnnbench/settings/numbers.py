"""The numbers of optimizer.* and scheduler.*: finite, and inside the range each known key
allows, checked before anything is built.

torch checks some of them (a negative lr, momentum or weight decay) but lets NaN through every
`x < 0` test, and an infinite rate, a NaN momentum or a zero `div_factor` would only show as a
diverged run or a ZeroDivisionError many steps later, blamed on the learning rate.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from cnnbench.errors import UserError

INF = math.inf

# key -> (low, high, low allowed, high allowed, an example); a key of any optimizer or scheduler
RANGES: dict[str, tuple[float, float, bool, bool, str]] = {
    "momentum": (0, 1, True, True, "0.9"),
    "dampening": (0, 1, True, True, "0"),
    "weight_decay": (0, INF, True, False, "5e-4"),
    "betas": (0, 1, True, False, "[0.9,0.999]"),
    "rho": (0, 1, True, True, "0.9"),
    "eps": (0, INF, False, False, "1e-8"),
    "max_lr": (0, INF, False, False, "0.1"),
    "pct_start": (0, 1, True, True, "0.25"),
    "div_factor": (0, INF, False, False, "25"),
    "final_div_factor": (0, INF, False, False, "10000"),
    "factor": (0, 1, False, False, "0.5"),
    "patience": (0, INF, True, False, "5"),
    "min_lr": (0, INF, True, False, "1e-6"),
    "eta_min": (0, INF, True, False, "0"),
    "threshold": (0, INF, True, False, "1e-4"),
    "cooldown": (0, INF, True, False, "0"),
}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _inside(value: float, low: float, high: float, low_ok: bool, high_ok: bool) -> bool:
    above = value > low or (low_ok and value == low)
    below = value < high or (high_ok and value == high)
    return above and below


def _range_text(low: float, high: float, low_ok: bool, high_ok: bool) -> str:
    if high == INF:
        return f"a finite number, {low:g} or more" if low_ok else f"a finite number above {low:g}"
    if low_ok and high_ok:
        return f"a number from {low:g} to {high:g}"
    return (f"a number {'at least' if low_ok else 'above'} {low:g} and "
            f"{'at most' if high_ok else 'below'} {high:g}")


def check_numbers(group: str, options: Mapping[str, Any]) -> None:
    """A UserError (one paragraph) for the first number of `options` (the plain config of
    `group`, optimizer or scheduler) that is not finite or is outside its key's range."""
    for key, value in options.items():
        if key.startswith("_"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in (v for v in values if _number(v)):
            bounds = RANGES.get(key)
            if math.isfinite(item) and (bounds is None or _inside(item, *bounds[:4])):
                continue
            must = _range_text(*bounds[:4]) if bounds else "a finite number"
            example = f", e.g. {group}.{key}={bounds[4]}" if bounds else ""
            raise UserError(f"{group}.{key}={value!r} is not valid: it must be {must}{example} "
                            f"(a value outside that would only show later, as a diverged or "
                            f"failed run).")
