"""The learning rate a range test suggests (plain numbers in, no torch).

The suggestion is `minimum/10`, fastai's `lr_min` rule: a tenth of the lr of the lowest smoothed
loss. `steepest`, Lightning's rule (Tuner.lr_find's suggestion: the lr where the smoothed loss
falls fastest against log(lr), the first SKIP_START steps left out where enough remain, and only
up to the lowest smoothed loss), is kept beside it for reference, not as the suggestion (it may
lie above or below it): for LeNet-5 on MNIST with SGD (momentum 0.9) it chose 0.115, and with
mixup and CutMix 0.509, and both runs stayed at chance level (11.35% test accuracy after 2
epochs), where minimum/10 (0.0138 and 0.0614) trained (92.6% with mixup and CutMix).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

METHOD = "minimum/10"
SKIP_START = 10  # as Lightning's skip_begin
MIN_POINTS = 3


@dataclass(frozen=True)
class Suggestion:
    """The suggested lr (minimum/10), the lr of the lowest smoothed loss and its step, and the
    steepest descent's lr and step."""

    minimum_lr: float
    minimum_index: int
    steepest_lr: float
    steepest_index: int
    method: str = METHOD

    @property
    def lr(self) -> float:
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
    return Suggestion(float(lrs[lowest]), lowest, float(lrs[index]), index)
