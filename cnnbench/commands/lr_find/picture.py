"""lr_find.png: the loss against the learning rate (log scale), the suggestion marked."""
from __future__ import annotations

import io
import math
from typing import Sequence

from cnnbench.engine.lr_range import DIVERGE_FACTOR, RangeTest
from cnnbench.engine.lr_suggestion import Suggestion

RAW, SMOOTH, MARK, RULE = "#9ecae1", "#1f77b4", "#d62728", "#7f7f7f"


def loss_range(test: RangeTest) -> tuple[float, float] | None:
    """The y range that shows the descent: from the lowest loss (of a step, or smoothed) to the
    highest smoothed one before the test ran away (at most DIVERGE_FACTOR x its lowest), with
    a margin."""
    smoothed = [v for v in test.smoothed if math.isfinite(v)]
    if not smoothed:
        return None
    low = min(smoothed + [v for v in test.losses if math.isfinite(v)])
    high = max(smoothed)
    high = min(high, DIVERGE_FACTOR * min(smoothed)) if min(smoothed) > 0 else high
    margin = 0.05 * (high - low) or 0.05 * abs(low) or 0.05
    return low - margin, high + margin


def _finite(values: Sequence[float]) -> list[float]:
    return [v if math.isfinite(v) else math.nan for v in values]


def lr_find_png(test: RangeTest, found: Suggestion | None, title: str) -> bytes:
    """The picture as PNG bytes: each step's loss (light), the smoothed loss, the suggested lr
    (minimum/10: a red dashed line; the lowest smoothed loss: a red dot) and the steepest
    descent (a grey dotted line)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.6), dpi=110, facecolor="white")
    ax = fig.add_subplot()
    ax.plot(test.lrs, _finite(test.losses), color=RAW, lw=0.9, label="loss of each step")
    ax.plot(test.lrs, _finite(test.smoothed), color=SMOOTH, lw=2, label="smoothed loss")
    if found is not None:
        ax.axvline(found.lr, color=MARK, ls="--", lw=1.2,
                   label=f"suggested lr {found.lr:.2g} (minimum/10)")
        ax.plot([found.minimum_lr], [test.smoothed[found.minimum_index]], "o", color=MARK, ms=7,
                label=f"lowest smoothed loss, lr {found.minimum_lr:.2g}")
        ax.axvline(found.steepest_lr, color=RULE, ls=":", lw=1.5,
                   label=f"steepest descent {found.steepest_lr:.2g} (too high to train at)")
    span = loss_range(test)
    if span is not None:
        ax.set_ylim(*span)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left", fontsize=9, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return buffer.getvalue()
