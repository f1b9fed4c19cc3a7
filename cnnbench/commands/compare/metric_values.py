"""The values compare accepts for the metrics it knows: finite, and inside each metric's range
(accuracies 0-1; losses, seconds and counts 0 and up). A run's metrics.json is someone else's
file: a value outside is left out, as a NaN is, with the reason."""
from __future__ import annotations

import math
import re
from typing import Any, Iterable

SHIFT_KEY = re.compile(r"shift/\d{1,3}px")  # test accuracy with the images shifted (2px, 4px)
FRACTION, AMOUNT = (0.0, 1.0), (0.0, math.inf)  # the ranges the known metrics lie in
RANGES = {"test/acc": FRACTION, "test/top5": FRACTION, "test/macro_f1": FRACTION,
          "test/macro_precision": FRACTION, "test/macro_recall": FRACTION,
          "target_acc": FRACTION, "test/loss": AMOUNT, "params": AMOUNT,
          "train_seconds": AMOUNT, "images_per_s": AMOUNT, "epochs_run": AMOUNT,
          "time_to_target_s": AMOUNT, "epochs_to_target": AMOUNT, "energy_joules": AMOUNT}


def finite_number(value: Any) -> float | int | None:
    """A finite number, else None (NaN and infinities as an older metrics.json held them)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def value_range(key: str) -> tuple[float, float] | None:
    """The range a known metric's values lie in (accuracies 0–1, losses, seconds, counts 0 and
    up); None for a key compare knows no range of."""
    return FRACTION if SHIFT_KEY.fullmatch(key) else RANGES.get(key)


def outside(key: str, value: Any) -> str | None:
    """Why a finite number of a known metric cannot be ('test/acc 5 is outside 0–1',
    'test/loss -1 is below 0'); None when it can, or the key has no known range."""
    bounds = value_range(key)
    if bounds is None or finite_number(value) is None or bounds[0] <= value <= bounds[1]:
        return None
    low, high = bounds
    where = f"outside {low:g}–{high:g}" if math.isfinite(high) else f"below {low:g}"
    return f"{key} {value:g} is {where}"


def out_of_range(data: dict[str, Any], keys: Iterable[str]) -> dict[str, str]:
    """Each of `keys` whose number in `data` lies outside its metric's range, and why."""
    found = {key: outside(key, data.get(key)) for key in keys}
    return {key: why for key, why in found.items() if why}
