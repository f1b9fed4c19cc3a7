"""Learning-rate schedules from config, each stepped at the right moment for its kind.

Per-batch schedules (one-cycle, cosine) get their length from the run; ReduceLROnPlateau is
stepped once per epoch with the validation loss (or the training loss when there is no
validation set); any other scheduler is stepped once per epoch. Parameter groups with their own
`lr_scale` (optimizer.backbone_lr_scale) keep their ratio: cosine and plateau scale each group's
own lr, and one-cycle gets one max_lr per group.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from cnnbench.errors import UserError

PER_STEP_LENGTH_ARGS = ("total_steps", "T_max")


class LRSchedule:
    """Wraps an optional torch scheduler; the fit loop calls after_batch and after_epoch."""

    def __init__(self, scheduler: Any | None) -> None:
        self.scheduler = scheduler
        self.per_step = scheduler is not None and _takes_length(type(scheduler))

    @property
    def is_plateau(self) -> bool:
        return isinstance(self.scheduler, ReduceLROnPlateau)

    def after_batch(self) -> None:
        if self.per_step:
            self.scheduler.step()

    def after_epoch(self, monitored_loss: float) -> None:
        if self.scheduler is None or self.per_step:
            return
        if self.is_plateau:
            self.scheduler.step(monitored_loss)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved schedule. A per-batch schedule saved for another length (a resume
        with more trainer.epochs) keeps this one's length instead and is fast-forwarded to the
        step the saved one had reached: the lr follows the new curve from there."""
        if self.scheduler is None or not state:
            return
        if self.per_step and any(name in state and state[name] != getattr(self.scheduler, name)
                                 for name in PER_STEP_LENGTH_ARGS):
            self.fast_forward(int(state.get("last_epoch", 0)))
        else:
            self.scheduler.load_state_dict(state)

    def fast_forward(self, steps: int) -> None:
        """Replay `steps` steps of this schedule from its start (not past its end)."""
        for group in self.scheduler.optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        self.scheduler.last_epoch = 0
        length = min(getattr(self.scheduler, n) for n in PER_STEP_LENGTH_ARGS
                     if hasattr(self.scheduler, n))
        with warnings.catch_warnings():  # "step() before optimizer.step()": no training here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(min(steps, length)):
                self.scheduler.step()


def _takes_length(cls: type) -> bool:
    params = inspect.signature(cls.__init__).parameters
    return any(name in params for name in PER_STEP_LENGTH_ARGS)


def build_schedule(factory: Callable[..., Any] | None, optimizer: torch.optim.Optimizer,
                   epochs: int, steps_per_epoch: int) -> LRSchedule:
    """`factory` is the partially-applied scheduler class from config (None for a constant lr)."""
    if factory is None:
        return LRSchedule(None)
    cls = getattr(factory, "func", factory)
    params = inspect.signature(cls.__init__).parameters
    total = max(1, epochs * steps_per_epoch)
    extra: dict[str, Any] = {name: total for name in PER_STEP_LENGTH_ARGS if name in params}
    max_lr = getattr(factory, "keywords", {}).get("max_lr")
    scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    if "max_lr" in params and isinstance(max_lr, (int, float)) and any(s != 1.0 for s in scales):
        # one-cycle sets every group's lr from max_lr: a scalar would erase the groups' ratio
        # (optimizer.backbone_lr_scale), so each group gets max_lr x its own scale
        extra["max_lr"] = [max_lr * scale for scale in scales]
    if "cycle_momentum" in params and not _has_momentum(optimizer):
        if getattr(factory, "keywords", {}).get("cycle_momentum"):
            raise UserError(f"scheduler.cycle_momentum=true needs an optimizer with momentum "
                            f"(sgd) or betas (adam, adamw); {type(optimizer).__name__} has "
                            f"neither. Drop the setting or choose such an optimizer.")
        extra["cycle_momentum"] = False  # e.g. Adadelta: one-cycle moves the rate alone
    return LRSchedule(factory(optimizer, **extra))


def _has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    return any(key in optimizer.defaults for key in ("momentum", "betas"))
