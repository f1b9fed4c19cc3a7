"""The fit loop: epochs of training (epoch.train_one_epoch), validation (evaluate), early
stopping, the best weights, and the finiteness check after every epoch."""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from cnnbench.data import DeviceLoader
from cnnbench.data.loader import batch_layout
from cnnbench.engine.distributed import unwrap
from cnnbench.engine.ema import WeightEMA
from cnnbench.engine.epoch import train_one_epoch
from cnnbench.engine.finetune import BackboneFreeze
from cnnbench.engine.finite import (
    NotFinite,
    nonfinite_row_count,
    require_finite,
    require_finite_weights,
)
from cnnbench.engine.graphs import StepGraphs, eager_graphs, loss_and_count
from cnnbench.engine.runtime import Runtime
from cnnbench.engine.schedule import LRSchedule
from cnnbench.engine.target import TargetWatch
from cnnbench.settings.trainer import EarlyStopping


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, loss_fn: nn.Module, runtime: Runtime,
             tta_flip: bool = False, count: Callable[..., torch.Tensor] = loss_and_count) -> dict:
    """Mean loss and top-1 accuracy of `model` over `loader`; with `tta_flip`, of the mean of the
    logits of each image and its mirror image (test-time augmentation)."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    for x, y in loader:
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            logits = model(x).float()  # a copy: the mirrored pass may reuse the output memory
            if tta_flip:  # (laid out as x: a compiled model is not compiled again)
                mirrored = batch_layout(x.flip(3), runtime.memory_format)
                logits = (logits + model(mirrored).float()) / 2
        count(logits, y, loss_fn, loss_sum, correct)
    n = max(loader.num_samples, 1)
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n}


@torch.no_grad()
def probe(model: nn.Module, x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """The outputs of `model` (eval mode, as validation runs it; a compiled model's own module,
    so no graph is compiled for it) for one batch."""
    model = getattr(model, "_orig_mod", model)
    model.eval()
    with runtime.autocast():
        return model(x).float()


@dataclass
class FitState:
    """Everything the loop carries between epochs (and what a checkpoint restores)."""

    epoch: int = 0                      # epochs completed
    best_score: float | None = None     # best monitored value so far
    best_epoch: int = 0
    bad_epochs: int = 0                 # epochs since the best one
    stopped_early: bool = False
    timed_seconds: float = 0.0          # the epochs' training and evaluation passes, added up
    best_weights: dict | None = field(default=None, repr=False)

    def improved(self, score: float, mode: str) -> bool:
        if self.best_score is None:
            return True
        return score < self.best_score if mode == "min" else score > self.best_score


class Fit:
    """Runs epochs of training and validation, and reports each epoch to `on_epoch_end`.

    With `ema`, validation and the best weights are those of the weight average. `keep_best`
    keeps a copy of the best epoch's weights for `restore_best`. With `target`, training stops
    once its accuracy is reached: validation accuracy, or, without a validation loader, the
    accuracy on `target_loader` (the test set), evaluated after each epoch for this alone. With
    `freeze`, only the classifier head is updated in its first epochs.

    An epoch whose training loss, weights (after its last step) or validation loss are NaN or
    infinite raises finite.NotFinite before anything of it is validated, reported or saved."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: LRSchedule,
                 loss_fn: nn.Module, runtime: Runtime, train_loader: DeviceLoader,
                 val_loader: DeviceLoader | None, epochs: int, early_stopping: EarlyStopping,
                 scaler: torch.amp.GradScaler | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                 ema: WeightEMA | None = None, keep_best: bool = True,
                 graphs: StepGraphs | None = None, target: TargetWatch | None = None,
                 target_loader: DeviceLoader | None = None,
                 freeze: BackboneFreeze | None = None) -> None:
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
        self.ema = ema
        self.keep_best = keep_best
        self.graphs = graphs or eager_graphs(runtime, loss_fn)
        self.target = target
        self.target_loader = target_loader
        self.freeze = freeze
        self.state = FitState()

    def evaluated_weights(self) -> contextlib.AbstractContextManager:
        """The weights validation sees: the average's with `ema`, else the model's own."""
        return self.ema.swapped() if self.ema is not None else contextlib.nullcontext()

    def monitored(self, row: dict) -> float:
        """The value early stopping and 'best' watch; training loss when there is no validation."""
        key = self.early_stopping.monitor if self.val_loader is not None else "train/loss"
        return row[key]

    def run(self, on_epoch_end: Callable[[dict, bool], None],
            on_progress: Callable[..., None] | None = None,
            on_epoch_start: Callable[[int], None] | None = None) -> FitState:
        mode = self.early_stopping.mode if self.val_loader is not None else "min"
        while self.state.epoch < self.epochs and not self.target_done():
            epoch = self.state.epoch + 1
            if on_epoch_start:
                on_epoch_start(epoch)
            lr = self.optimizer.param_groups[0]["lr"]
            frozen = self.freeze.frozen_in(epoch) if self.freeze is not None else ()
            train = train_one_epoch(self.model, self.train_loader, self.optimizer, self.loss_fn,
                                    self.runtime, self.scaler, self.schedule, on_progress,
                                    self.reduce, self.ema, self.graphs, frozen)
            self.require_finite_weights(train.get("last_batch"))
            row = {"epoch": epoch, "train/loss": train["loss"], "train/acc": train["acc"],
                   "val/loss": None, "val/acc": None, "lr": lr,
                   "epoch_seconds": train["seconds"],
                   "images_per_s": train["images"] / max(train["seconds"], 1e-9)}
            score, is_best, target_acc, eval_seconds = self.validate(row, mode)
            self.state.timed_seconds += train["seconds"] + eval_seconds
            self.schedule.after_epoch(row["val/loss"] if row["val/loss"] is not None
                                      else row["train/loss"])
            self.state.epoch = epoch
            if is_best:
                self.state.best_score, self.state.best_epoch, self.state.bad_epochs = score, epoch, 0
            else:
                self.state.bad_epochs += 1
            if self.target is not None and target_acc is not None:
                self.target.check(epoch, target_acc, self.state.timed_seconds, self.epochs)
            on_epoch_end(row, is_best)
            patience = self.early_stopping.patience
            if patience is not None and self.state.bad_epochs >= patience:
                self.state.stopped_early = True
                break
        if self.target_done() and self.state.epoch < self.epochs:
            self.state.stopped_early = True
        return self.state

    def validate(self, row: dict, mode: str) -> tuple[float, bool, float | None, float]:
        """Evaluate the epoch's weights into `row`; returns the monitored score, whether it is
        the best so far, the accuracy the target watches and the seconds spent evaluating."""
        target_acc = None
        with self.evaluated_weights():
            start = time.perf_counter()
            if self.val_loader is not None:
                val = evaluate(unwrap(self.model), self.val_loader, self.loss_fn,
                               self.runtime, count=self.graphs.count)
                require_finite({"validation loss": val["loss"]})
                row["val/loss"], row["val/acc"] = val["loss"], val["acc"]
                target_acc = val["acc"]
            elif self.target is not None and self.target_loader is not None:
                target_acc = evaluate(unwrap(self.model), self.target_loader, self.loss_fn,
                                      self.runtime, count=self.graphs.count)["acc"]
            eval_seconds = time.perf_counter() - start
            score = self.monitored(row)
            is_best = self.state.improved(score, mode)
            if is_best and self.keep_best:
                self.state.best_weights = copy.deepcopy(unwrap(self.model).state_dict())
        return score, is_best, target_acc, eval_seconds

    def require_finite_weights(self, batch: torch.Tensor | None) -> None:
        """After an epoch, before anything is validated or saved: raise NotFinite when a weight
        of the model (or of its weight average) is NaN or infinite, the last step included, or
        when the weights validation sees give NaN or infinite outputs for the epoch's last
        `batch` (finite weights so large that the computation overflows). Every process comes
        to the same verdict."""
        model = unwrap(self.model)
        require_finite_weights(model, "after the epoch's last step")
        if self.ema is not None:
            require_finite_weights(dict(zip(self.ema.names, self.ema.shadow)),
                                   "in the weight average (trainer.ema_decay)")
        if batch is None:
            return
        with self.evaluated_weights():
            outputs = probe(model, batch, self.runtime)
        bad = int(self.reduce(nonfinite_row_count(outputs).float().reshape(1)).item())
        if bad:
            raise NotFinite(f"the model's outputs became NaN or infinite after the epoch's last "
                            f"step, for {bad} images of its last batch")

    def target_done(self) -> bool:
        """Whether the target was reached and stops training (no target: never)."""
        return self.target is not None and self.target.done()

    def restore_best(self) -> None:
        if self.state.best_weights is not None:
            unwrap(self.model).load_state_dict(self.state.best_weights)

    def final_weights(self, restore_best: bool) -> None:
        """Leave the model with the weights training produced for testing and saving: the best
        epoch's (`restore_best`), else the weight average's (with `ema`), else the last ones."""
        if restore_best and self.state.best_weights is not None:
            self.restore_best()
        elif self.ema is not None:
            self.ema.apply()
