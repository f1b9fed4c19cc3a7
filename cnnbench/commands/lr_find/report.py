"""What `cnnbench lr-find` prints: the test, the suggestion and the files (80 columns)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnbench.engine.lr_range import RangeTest
from cnnbench.engine.lr_suggestion import Suggestion


def _say(console: Console, text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def report(console: Console, opts: Any, probe: Any, test: RangeTest,
           found: Suggestion | None, folder: Path) -> None:
    """The lines after the test; each fits 80 columns (a long path aside)."""
    options, runtime = probe.options, probe.parts.runtime
    _say(console, f"lr-find: {options['model']} on {options['dataset']}, "
                  f"{options['optimizer']}, {runtime.device_name} (AMP {runtime.amp_name})")
    span = f"lr {opts.start_lr:g} to {opts.end_lr:g}"
    if test.diverged:
        _say(console, f"{span}: stopped at step {test.steps} of {opts.num_steps}, where the "
                      f"loss ran away")
        why = ("the loss stopped being finite" if not math.isfinite(test.smoothed[-1]) else
               "the smoothed loss passed 4x its lowest")
        _say(console, f"  (at lr {test.lrs[-1]:.3g} {why})")
    else:
        _say(console, f"{span}: {test.steps} steps")
    if found is None:
        _say(console, "no suggestion: the smoothed loss never fell. Try a lower start_lr, more")
        _say(console, "num_steps, or look at the picture.")
    else:
        _say(console, f"suggested lr: {found.lr:.3g}  (a tenth of the lr of the lowest loss)")
        _say(console, f"steepest:     {found.steepest_lr:.3g}  (where the loss falls fastest; "
                      f"for reference)")
        _say(console, f"train with:   optimizer.lr={found.lr:.3g}  (or optimizer.lr=auto)")
    _say(console, f"picture: {folder / 'lr_find.png'}")
    _say(console, f"curve:   {folder / 'lr_find.csv'}")
