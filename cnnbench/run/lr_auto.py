"""`optimizer.lr=auto`: the run's learning rate from a range test on its own model, optimizer,
loss, data and device, taken before training starts.

The test puts back everything it changed (engine/lr_range.py), so training starts from the
weights, optimizer state and random streams it would have had with the rate given by hand. A
resumed auto run takes the rate its first part recorded in metrics.json, without testing again.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from omegaconf import DictConfig
from torch import nn

from cnnbench.engine.distributed import DistInfo
from cnnbench.engine.lr_range import END_LR, NUM_STEPS, START_LR, range_test
from cnnbench.engine.lr_suggestion import suggest
from cnnbench.engine.runtime import Runtime
from cnnbench.errors import UserError
from cnnbench.settings.learning_rate import recorded_lr

OptimizerFactory = Callable[[DictConfig], torch.optim.Optimizer]


def lr_find_record(suggested_lr: float, method: str, num_steps: int, steps_run: int,
                   start_lr: float = START_LR, end_lr: float = END_LR) -> dict[str, Any]:
    """metrics.json's `lr_find`: the rate chosen and the test that chose it."""
    return {"suggested_lr": suggested_lr, "method": method, "num_steps": num_steps,
            "steps_run": steps_run, "start_lr": start_lr, "end_lr": end_lr}


def with_lr(cfg: DictConfig, lr: float) -> DictConfig:
    """A copy of `cfg` whose optimizer.lr is `lr` (a scheduler's ${optimizer.lr} follows)."""
    chosen = copy.deepcopy(cfg)
    chosen.optimizer.lr = float(lr)
    return chosen


def auto_lr(cfg: DictConfig, make_optimizer: OptimizerFactory, model: nn.Module, loader: Any,
            loss_fn: nn.Module, runtime: Runtime, scaler: Any, dist: DistInfo,
            note: Callable[..., None], recorded: dict[str, Any] | None = None,
            ) -> tuple[DictConfig, dict[str, Any]]:
    """`cfg` with optimizer.lr set to the range test's suggestion (or the `recorded` one of a
    resumed run), and the `lr_find` record; one line says which rate the run trains at."""
    if recorded is not None:
        lr = recorded_lr({"lr_find": recorded})
        if lr is None:
            raise UserError("This optimizer.lr=auto run's metrics.json has no usable lr_find "
                            "record to resume with. Resume it with the rate as a number, the "
                            "same command plus optimizer.lr=<value> (e.g. the rate its "
                            "console log or TensorBoard shows), or start a new run.")
        note(f"optimizer.lr=auto: resuming at the rate this run found, {lr:.3g}.")
        return with_lr(cfg, lr), dict(recorded)
    if dist.enabled:
        raise UserError("optimizer.lr=auto runs its range test in one process, and this run has "
                        f"{dist.world_size}: run `cnnbench lr-find` with the same overrides "
                        "first and give the rate it suggests as optimizer.lr=<value>.")
    probe = make_optimizer(with_lr(cfg, START_LR))
    test = range_test(model, probe, loss_fn, runtime, loader, scaler=scaler)
    found = suggest(test.lrs, test.smoothed)
    if found is None:
        raise UserError(f"optimizer.lr=auto found no rate: over {test.steps} steps from "
                        f"{START_LR:g} to {END_LR:g} the smoothed loss never fell. Give "
                        f"optimizer.lr=<value>, or look at the curve `cnnbench lr-find` draws "
                        f"with the same overrides.")
    note(f"optimizer.lr=auto chose {found.lr:.3g} (a tenth of the lr of the lowest loss; "
         f"steepest descent: {found.steepest_lr:.3g}).")
    return with_lr(cfg, found.lr), lr_find_record(found.lr, found.method, NUM_STEPS,
                                                   test.steps)
