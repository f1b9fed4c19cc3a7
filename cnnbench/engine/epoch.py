"""One training epoch: every batch through the model, the loss, backward and the optimizer's
step (or the captured step's replay), with live progress; the epoch's totals at its end."""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Sequence

import torch
from torch import nn

from cnnbench.data import DeviceLoader
from cnnbench.engine.ema import WeightEMA
from cnnbench.engine.finetune import grads_hidden
from cnnbench.engine.finite import require_finite
from cnnbench.engine.graphs import StepGraphs, eager_graphs
from cnnbench.engine.runtime import Runtime
from cnnbench.engine.schedule import LRSchedule

PROGRESS_EVERY = 25  # batches between live updates (each one waits for the GPU)


def train_one_epoch(model: nn.Module, loader: DeviceLoader, optimizer: torch.optim.Optimizer,
                    loss_fn: nn.Module, runtime: Runtime, scaler: torch.amp.GradScaler | None,
                    schedule: LRSchedule, on_progress: Callable[..., None] | None = None,
                    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                    ema: WeightEMA | None = None, graphs: StepGraphs | None = None,
                    frozen: Sequence[nn.Parameter] = ()) -> dict:
    """One pass over `loader`; returns mean loss, accuracy, images seen, seconds and the last
    batch (`last_batch`, for the finiteness check after the epoch). A training loss that is NaN
    or infinite (at a progress report, or over the epoch) raises finite.NotFinite.

    `reduce` sums the epoch's totals across processes (DDP); the default is a single process.
    `ema`, when given, is updated after every optimizer step. `graphs` holds the run's captured
    step (None: the plain step). The optimizer leaves the `frozen` parameters alone (their
    gradients are still computed)."""
    graphs = graphs or eager_graphs(runtime, loss_fn)
    graph = graphs.step_for(model, loader, scaler)
    model.train()
    if graph is not None:  # the graph adds to its own totals; the other batches join them
        loss_sum, correct = graph.loss_sum.zero_(), graph.correct.zero_()
    else:
        loss_sum = torch.zeros((), device=runtime.device)
        correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    seen, x = 0, None  # x: the last batch, once there is one
    count = graphs.count
    start = time.perf_counter()

    def stepped(step: int, images: int) -> None:
        """After the optimizer's step: schedule, weight average, progress."""
        nonlocal seen
        schedule.after_batch()
        if ema is not None:
            ema.after_step()
        seen += images
        if on_progress is not None and (step % PROGRESS_EVERY == 0 or step == len(loader)):
            _report(step, loss_sum, correct, seen, start, on_progress)

    for step, (x, y) in enumerate(loader, 1):
        if graph is not None and x.shape == graph.shape:
            graph(x, y)  # forward, loss, totals and backward: one replay
            optimizer_step(optimizer, scaler, frozen)
            stepped(step, y.shape[0])
            continue
        # with a captured step, gradients stay where the graph writes them: zeroed, not dropped
        eager_step(model, optimizer, loss_fn, runtime, scaler, count, x, y, (loss_sum, correct),
                   frozen, keep_grads=graph is not None)
        stepped(step, y.shape[0])
    totals = reduce(torch.stack([loss_sum.float(), correct.float(),
                                 torch.tensor(float(seen), device=runtime.device)]))
    loss_total, correct_total, seen = totals.tolist()
    mean_loss = loss_total / max(seen, 1)
    seconds = time.perf_counter() - start
    require_finite({"training loss": mean_loss})
    return {"loss": mean_loss, "acc": correct_total / max(seen, 1), "images": int(seen),
            "seconds": seconds, "last_batch": x}


def eager_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
               runtime: Runtime, scaler: torch.amp.GradScaler | None, count: Callable[..., torch.Tensor],
               x: torch.Tensor, y: torch.Tensor, totals: tuple[torch.Tensor, torch.Tensor],
               frozen: Sequence[nn.Parameter] = (), keep_grads: bool = False) -> torch.Tensor:
    """One training step as Python runs it (no captured graph): the forward pass under autocast,
    the loss (added to `totals`, the loss sum and the correct count), zero_grad (gradients zeroed
    in place with `keep_grads`, else dropped), backward (scaled with fp16) and the optimizer's
    step. Returns the batch's loss."""
    if runtime.cuda_graphs:  # a new iteration: the graphs may reuse the last step's outputs
        torch.compiler.cudagraph_mark_step_begin()
    with runtime.autocast():
        logits = model(x)
    loss = count(logits, y, loss_fn, *totals)
    optimizer.zero_grad(set_to_none=not keep_grads)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    optimizer_step(optimizer, scaler, frozen)
    return loss


def optimizer_step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                   frozen: Sequence[nn.Parameter] = ()) -> None:
    """The optimizer's step; with fp16, through the GradScaler (skipped when gradients overflow).
    The `frozen` parameters' gradients are hidden from it (finetune.grads_hidden): not updated."""
    with grads_hidden(frozen) if frozen else contextlib.nullcontext():
        if scaler is None:
            optimizer.step()
            return
        scaler.step(optimizer)
        scaler.update()


def _report(step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, start: float,
            on_progress: Callable[..., None]) -> None:
    mean_loss = loss_sum.item() / seen
    require_finite({"training loss": mean_loss}, f"by batch {step}")  # checked every few batches
    on_progress(step, mean_loss, correct.item() / seen, seen / (time.perf_counter() - start))
