"""The fit loop: train_one_epoch, evaluate, and fit (epochs, early stopping, checkpoints)."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import DeviceLoader
from .distributed import unwrap
from .runtime import Runtime
from .schedule import LRSchedule
from .settings import EarlyStopping

PROGRESS_EVERY = 25  # batches between live updates (each one waits for the GPU)


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def train_one_epoch(model: nn.Module, loader: DeviceLoader, optimizer: torch.optim.Optimizer,
                    loss_fn: nn.Module, runtime: Runtime, scaler: torch.amp.GradScaler | None,
                    schedule: LRSchedule, on_progress: Callable[..., None] | None = None,
                    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> dict:
    """One pass over `loader`; returns mean loss, accuracy, images seen and seconds.

    `reduce` sums the epoch's totals across processes (DDP); the default is a single process."""
    model.train()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for step, (x, y) in enumerate(loader, 1):
        with runtime.autocast():
            logits = model(x)
            loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        schedule.after_batch()
        loss_sum += loss.detach().float() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        if on_progress is not None and (step % PROGRESS_EVERY == 0 or step == len(loader)):
            mean_loss = loss_sum.item() / seen
            if not math.isfinite(mean_loss):
                raise Diverged(f"loss is {mean_loss} at batch {step}")
            on_progress(step, mean_loss, correct.item() / seen, seen / (time.perf_counter() - start))
    totals = reduce(torch.stack([loss_sum.float(), correct.float(),
                                 torch.tensor(float(seen), device=runtime.device)]))
    loss_total, correct_total, seen = totals.tolist()
    mean_loss = loss_total / max(seen, 1)
    seconds = time.perf_counter() - start
    if not math.isfinite(mean_loss):
        raise Diverged(f"loss is {mean_loss}")
    return {"loss": mean_loss, "acc": correct_total / max(seen, 1), "images": int(seen),
            "seconds": seconds}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, loss_fn: nn.Module, runtime: Runtime) -> dict:
    """Mean loss and top-1 accuracy of `model` over `loader`."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    for x, y in loader:
        with runtime.autocast():
            logits = model(x)
        loss_sum += loss_fn(logits.float(), y) * y.shape[0]
        correct += (logits.argmax(1) == y).sum()
    n = max(loader.num_samples, 1)
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n}


@dataclass
class FitState:
    """Everything the loop carries between epochs (and what a checkpoint restores)."""

    epoch: int = 0                      # epochs completed
    best_score: float | None = None     # best monitored value so far
    best_epoch: int = 0
    bad_epochs: int = 0                 # epochs since the best one
    stopped_early: bool = False
    best_weights: dict | None = field(default=None, repr=False)

    def improved(self, score: float, mode: str) -> bool:
        if self.best_score is None:
            return True
        return score < self.best_score if mode == "min" else score > self.best_score


class Fit:
    """Runs epochs of training and validation, and reports each epoch to `on_epoch_end`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: LRSchedule,
                 loss_fn: nn.Module, runtime: Runtime, train_loader: DeviceLoader,
                 val_loader: DeviceLoader | None, epochs: int, early_stopping: EarlyStopping,
                 scaler: torch.amp.GradScaler | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> None:
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.loss_fn = loss_fn
        self.runtime = runtime
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.scaler = scaler
        self.reduce = reduce
        self.state = FitState()

    def monitored(self, row: dict) -> float:
        """The value early stopping and 'best' watch; training loss when there is no validation."""
        key = self.early_stopping.monitor if self.val_loader is not None else "train/loss"
        return row[key]

    def run(self, on_epoch_end: Callable[[dict, bool], None],
            on_progress: Callable[..., None] | None = None,
            on_epoch_start: Callable[[int], None] | None = None) -> FitState:
        mode = self.early_stopping.mode if self.val_loader is not None else "min"
        while self.state.epoch < self.epochs:
            epoch = self.state.epoch + 1
            if on_epoch_start:
                on_epoch_start(epoch)
            lr = self.optimizer.param_groups[0]["lr"]
            train = train_one_epoch(self.model, self.train_loader, self.optimizer, self.loss_fn,
                                    self.runtime, self.scaler, self.schedule, on_progress,
                                    self.reduce)
            row = {"epoch": epoch, "train/loss": train["loss"], "train/acc": train["acc"],
                   "val/loss": None, "val/acc": None, "lr": lr,
                   "epoch_seconds": train["seconds"],
                   "images_per_s": train["images"] / max(train["seconds"], 1e-9)}
            if self.val_loader is not None:
                val = evaluate(unwrap(self.model), self.val_loader, self.loss_fn, self.runtime)
                row["val/loss"], row["val/acc"] = val["loss"], val["acc"]
            score = self.monitored(row)
            self.schedule.after_epoch(row["val/loss"] if row["val/loss"] is not None
                                      else row["train/loss"])
            is_best = self.state.improved(score, mode)
            self.state.epoch = epoch
            if is_best:
                self.state.best_score, self.state.best_epoch, self.state.bad_epochs = score, epoch, 0
                self.state.best_weights = copy.deepcopy(unwrap(self.model).state_dict())
            else:
                self.state.bad_epochs += 1
            on_epoch_end(row, is_best)
            patience = self.early_stopping.patience
            if patience is not None and self.state.bad_epochs >= patience:
                self.state.stopped_early = True
                break
        return self.state

    def restore_best(self) -> None:
        if self.state.best_weights is not None:
            unwrap(self.model).load_state_dict(self.state.best_weights)
