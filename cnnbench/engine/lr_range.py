"""The learning-rate range test (Smith 2017; fastai's lr_find, Lightning's Tuner.lr_find).

Training steps with the learning rate rising exponentially from `start_lr` to `end_lr`, one lr
per batch, and the loss of each batch; the loss is smoothed (an exponential moving average with
bias correction) and the test stops once the smoothed loss is over `diverge_factor` times the
best so far, or a loss is NaN or infinite. The model, the optimizer, the GradScaler, the
loader's random streams and torch's random number generators are put back as they were
afterwards: training starts from exactly the state it would have had without the test. The
configured scheduler is not stepped: the test sets every parameter group's lr itself.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from cnnbench.engine.epoch import eager_step
from cnnbench.engine.graphs import loss_and_count, model_restored
from cnnbench.engine.runtime import Runtime

START_LR, END_LR, NUM_STEPS = 1e-7, 10.0, 100  # fastai's and Lightning's defaults
BETA = 0.98           # the smoothing of the loss, as fastai
DIVERGE_FACTOR = 4.0  # the smoothed loss over this many times the best ends the test


@dataclass
class RangeTest:
    """What the test saw: per step, the learning rate, the batch's loss and the smoothed loss."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    diverged: bool = False  # stopped before its last step: the loss ran away or stopped being finite

    @property
    def steps(self) -> int:
        return len(self.lrs)


def lr_at(step: int, num_steps: int, start_lr: float, end_lr: float) -> float:
    """The learning rate of `step` (0-based): `start_lr` at the first, `end_lr` at the last."""
    return start_lr * (end_lr / start_lr) ** (step / max(num_steps - 1, 1))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every parameter group at `lr` (a group with an `lr_scale` at lr x its scale)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


@contextlib.contextmanager
def state_restored(model: nn.Module, optimizer: torch.optim.Optimizer,
                   scaler: Any | None = None, loader: Any | None = None) -> Iterator[None]:
    """Train inside; afterwards the model (weights, buffers, gradients, mode), the optimizer
    (state and groups), the GradScaler, the loader's random streams and torch's generators are
    as before."""
    grads = [None if p.grad is None else (p.grad, p.grad.detach().clone())
             for p in model.parameters()]
    optimizer_state = copy.deepcopy(optimizer.state_dict())
    scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
    loader_state = (copy.deepcopy(loader.state_dict())
                    if hasattr(loader, "state_dict") else None)
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        with model_restored(model):  # weights, buffers and mode
            yield
    finally:
        _put_back_grads(model, grads)
        optimizer.load_state_dict(optimizer_state)
        if scaler_state is not None:
            scaler.load_state_dict(scaler_state)
        if loader_state is not None:
            loader.load_state_dict(loader_state)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def _put_back_grads(model: nn.Module, grads: list[tuple[torch.Tensor, torch.Tensor] | None],
                    ) -> None:
    """Each parameter's gradient as it was: none, or the same tensor (a captured training step
    writes its gradients there) holding the same values."""
    for param, saved in zip(model.parameters(), grads):
        if saved is None:
            param.grad = None
        else:
            tensor, values = saved
            param.grad = tensor.copy_(values)


def _batches(loader: Iterable) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, epoch after epoch, for as long as they are asked for."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            return


def range_test(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               runtime: Runtime, loader: Iterable, *, start_lr: float = START_LR,
               end_lr: float = END_LR, num_steps: int = NUM_STEPS, scaler: Any | None = None,
               beta: float = BETA, diverge_factor: float = DIVERGE_FACTOR,
               count: Callable[..., torch.Tensor] = loss_and_count) -> RangeTest:
    """Up to `num_steps` training steps on `loader`'s batches (from the start again when they
    run out), the lr rising exponentially from `start_lr` to `end_lr`; everything it changed
    is put back afterwards (`state_restored`). Raises nothing on divergence: it stops there."""
    found = RangeTest()
    average, best = 0.0, math.inf
    with state_restored(model, optimizer, scaler, loader):
        model.train()
        batches = _batches(loader)
        for step in range(num_steps):
            batch = next(batches, None)
            if batch is None:
                break
            x, y = batch
            lr = lr_at(step, num_steps, start_lr, end_lr)
            set_lr(optimizer, lr)
            loss = _step(model, optimizer, loss_fn, runtime, scaler, count, x, y)
            average = beta * average + (1 - beta) * loss
            smoothed = average / (1 - beta ** (step + 1))
            found.lrs.append(lr)
            found.losses.append(loss)
            found.smoothed.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge_factor * best:
                found.diverged = step < num_steps - 1
                break
            best = min(best, smoothed)
    return found


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
          runtime: Runtime, scaler: Any | None, count: Callable[..., torch.Tensor],
          x: torch.Tensor, y: torch.Tensor) -> float:
    """One training step, as an epoch takes it; the batch's loss (before the step)."""
    totals = torch.zeros((), device=x.device), torch.zeros((), device=x.device, dtype=torch.long)
    loss = eager_step(model, optimizer, loss_fn, runtime, scaler, count, x, y, totals)
    return float(loss.detach())
