"""Before the timed epochs: compile, capture the step as a CUDA graph and make every first launch
on zero batches, then put the model and the optimizer back as they were."""
from __future__ import annotations

import time

import torch
from torch import nn

from cnnbench.data import DeviceLoader, blank_batch
from cnnbench.engine.graphs import StepGraphs, eager_graphs, model_restored
from cnnbench.engine.runtime import Runtime


def _batch_sizes(loader: DeviceLoader) -> list[int]:
    """The batch sizes `loader` yields: the full one and a smaller last one (when kept)."""
    n, b = loader.num_samples, loader.batch_size
    last = n % b if (n % b and not loader.drop_last) else 0
    return [s for s in (min(b, n), last) if s]


class _Blanks:
    """Zero batches of the loaders' shape and memory layout, and a forward pass as the loop
    makes it (so that compiled code is not compiled again inside the epochs)."""

    def __init__(self, model: nn.Module, runtime: Runtime, sample: tuple[int, ...],
                 classes: int = 0) -> None:
        self.model, self.runtime, self.sample = model, runtime, sample
        self.classes = classes  # soft targets of this many classes (mixup/CutMix); 0: labels

    def batch(self, size: int, soft: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        x = blank_batch((size, *self.sample), self.runtime.device, self.runtime.memory_format)
        if soft and self.classes:
            return x, torch.zeros(size, self.classes, device=self.runtime.device)
        return x, torch.zeros(size, dtype=torch.long, device=self.runtime.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with self.runtime.autocast():
            return self.model(x)


def _warm_shapes(blanks: _Blanks, loss_fn: nn.Module, count, train_loader: DeviceLoader,
                 eval_loaders: list[DeviceLoader], repeats: int) -> None:
    """Forward and backward on every training batch shape, forward on every evaluation shape."""
    model, dev = blanks.model, blanks.runtime.device
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    try:
        with model_restored(model):
            model.train()
            for size in _batch_sizes(train_loader):
                x, y = blanks.batch(size)
                for _ in range(repeats):
                    loss = count(blanks.forward(x), y, loss_fn, loss_sum, correct)
                    for p in model.parameters():  # as in training: no gradient accumulation (a
                        p.grad = None             # .grad made inside a CUDA graph is overwritten)
                    loss.backward()
            model.eval()
            with torch.no_grad():
                for size in sorted({s for loader in eval_loaders for s in _batch_sizes(loader)}):
                    x, y = blanks.batch(size, soft=False)
                    for _ in range(repeats):
                        count(blanks.forward(x), y, loss_fn, loss_sum, correct)
    finally:
        for p in model.parameters():
            p.grad = None


def _undone_optimizer_step(blanks: _Blanks, loss_fn: nn.Module, graphs: StepGraphs, step,
                           optimizer: torch.optim.Optimizer, train_loader: DeviceLoader) -> None:
    """One training step, the optimizer's included, undone: weights and statistics come back, and
    the optimizer's state is emptied (it is built lazily at the first step, so the real first step
    starts from where it would have). Its learning rates are kept."""
    model, dev = blanks.model, blanks.runtime.device
    x, y = blanks.batch(_batch_sizes(train_loader)[0])
    with model_restored(model):
        model.train()
        if step is not None:
            step(x, y)
        else:
            totals = torch.zeros((), device=dev), torch.zeros((), device=dev, dtype=torch.long)
            graphs.count(blanks.forward(x), y, loss_fn, *totals).backward()
        optimizer.step()
    optimizer.state.clear()
    if step is not None:  # the graph's gradients stay (each replay overwrites them)
        step.loss_sum.zero_()
        step.correct.zero_()
    else:
        for p in model.parameters():
            p.grad = None


def warm_up(model: nn.Module, loss_fn: nn.Module, runtime: Runtime, train_loader: DeviceLoader,
            eval_loaders: list[DeviceLoader], repeats: int = 3,
            optimizer: torch.optim.Optimizer | None = None, graphs: StepGraphs | None = None,
            scaler: torch.amp.GradScaler | None = None) -> float:
    """Run `model` on zero batches of every shape it will meet, in training (with backward) and
    evaluation mode, so that torch.compile compiles (and the CUDA graph is captured) here rather
    than inside the timed epochs; with `optimizer`, also one optimizer step, and the loader's
    preparation of a batch, so that their first launches are not timed either. Leaves the model
    and the optimizer as they were: weights and BatchNorm statistics restored, no gradients
    kept, no optimizer state (it is created at the first real step, as without the warm-up).
    Returns the seconds it took.
    """
    start = time.perf_counter()
    graphs = graphs or eager_graphs(runtime, loss_fn)
    blanks = _Blanks(model, runtime, train_loader.sample_shape,
                     getattr(train_loader, "soft_classes", 0))
    _warm_shapes(blanks, loss_fn, graphs.count, train_loader, eval_loaders, repeats)
    step = graphs.step_for(model, train_loader, scaler)  # the CUDA graph, when there is one
    if optimizer is not None and scaler is None:
        _undone_optimizer_step(blanks, loss_fn, graphs, step, optimizer, train_loader)
    if isinstance(train_loader, DeviceLoader):  # (a streaming loader's images are on the host)
        train_loader.warm_up()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    return time.perf_counter() - start
