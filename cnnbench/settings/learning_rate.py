"""optimizer.lr: a number above 0, or `auto` (the run's range test chooses it); and
optimizer.backbone_lr_scale, the factor of it every layer but the classifier head trains at.

With `optimizer.lr=auto` the run's identity holds `auto` (two auto runs of one config are the
same run, whatever rate each found), and the rate found goes into its metrics.json (`lr_find`);
a resumed auto run takes the rate it recorded rather than testing again.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from cnnbench.errors import UserError

AUTO = "auto"
SCALE_KEY = "backbone_lr_scale"  # optimizer.<key>: cnnbench's own, never passed to torch


def is_auto(lr: Any) -> bool:
    """Whether optimizer.lr asks for the range test's rate: the word `auto`, nothing else."""
    return lr == AUTO and isinstance(lr, str)


def check_lr(lr: Any) -> None:
    """A UserError (one paragraph) unless `lr` is None (an optimizer without one), a number above
    0 or `auto`."""
    if lr is None or is_auto(lr):
        return
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise UserError(f"optimizer.lr={lr!r} is not valid: the learning rate must be a finite "
                        f"number above 0, e.g. optimizer.lr=0.001, or optimizer.lr=auto to have the "
                        f"run choose it with a range test first (as `cnnbench lr-find` does).")


def recorded_lr(previous: dict[str, Any]) -> float | None:
    """The rate an earlier part of an auto run found, from its metrics.json (None: none)."""
    found = previous.get("lr_find")
    lr = found.get("suggested_lr") if isinstance(found, dict) else None
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def backbone_lr_scale(optimizer_cfg: Mapping[str, Any]) -> float:
    """`optimizer.backbone_lr_scale`, checked (absent, as in a config from before it: 1.0)."""
    scale = optimizer_cfg.get(SCALE_KEY, 1.0)
    if (isinstance(scale, bool) or not isinstance(scale, (int, float))
            or not math.isfinite(scale) or scale <= 0):
        frozen = (" A scale of 0 would freeze the backbone for the whole run: to train only the "
                  "head for the first N epochs, use trainer.freeze_backbone_epochs=N instead."
                  if scale == 0 and not isinstance(scale, bool) else
                  " To train only the head for the first N epochs, use "
                  "trainer.freeze_backbone_epochs=N.")
        raise UserError(f"optimizer.{SCALE_KEY}={scale!r} is not valid: it must be a number "
                        f"above 0, the factor of optimizer.lr that every layer but the "
                        f"classifier head trains at (the head at optimizer.lr), e.g. "
                        f"optimizer.{SCALE_KEY}=0.1; 1.0 trains everything at one rate."
                        + frozen)
    return float(scale)
