"""The learning rate a range test suggests (plain numbers in, no torch).

`steepest` is Lightning's rule (Tuner.lr_find's suggestion): the lr where the smoothed loss
falls fastest against log(lr), the first SKIP_START steps (the smoothing still settling) left
out where enough remain, and only up to the lowest smoothed loss (past it the loss climbs, and
a steep stretch there is noise). `minimum/10` is fastai's older rule, shown beside it: a tenth
of the lr of the lowest smoothed loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

METHOD = "steepest"
SKIP_START = 10  # as Lightning's skip_begin
MIN_POINTS = 3


@dataclass(frozen=True)
class Suggestion:
    """The suggested lr (steepest descent), its step, and the lr of the lowest smoothed loss."""

    lr: float
    index: int
    minimum_lr: float
    method: str = METHOD

    @property
    def minimum_over_10(self) -> float:
        return self.minimum_lr / 10


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> Suggestion | None:
    """The suggestion for a test's lrs and smoothed losses; None when the loss never fell (too
    few steps, or the loss rose or stayed flat from the first step)."""
    n = 0
    while n < min(len(lrs), len(smoothed)) and math.isfinite(smoothed[n]):
        n += 1  # a loss that stopped being finite ends what can be read
    if n < MIN_POINTS:
        return None
    loss = np.asarray(smoothed[:n], dtype=float)
    log_lr = np.log10(np.asarray(lrs[:n], dtype=float))
    lowest = int(np.argmin(loss))
    if lowest < 1:
        return None
    slopes = np.gradient(loss, log_lr)
    start = SKIP_START if lowest - SKIP_START >= MIN_POINTS else 0
    index = start + int(np.argmin(slopes[start:lowest + 1]))
    if not slopes[index] < 0:
        return None
    return Suggestion(float(lrs[index]), index, float(lrs[lowest]))
