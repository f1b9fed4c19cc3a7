"""The training step's fast paths, made once per run and handed to the loop: no module state.

`StepGraphs` holds the loss-and-metrics counter (compiled when the model is compiled) and the
step captured as a CUDA graph (`trainer.cuda_graph`, on by default on CUDA). The loop asks it
for the graph of its batch shape; capture happens on first use, and when it is not possible the
run goes on without it, says why in one line and records it (`status`, for metrics.json).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from cnnbench.data import DeviceLoader, blank_batch
from cnnbench.engine.runtime import Runtime


def loss_and_count(logits: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
                   loss_sum: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """The batch's loss (in fp32); adds its summed loss and its correct predictions to the
    running totals, on the device (no synchronization). `y` is labels, or soft targets (mixup,
    CutMix): a prediction is then correct when it is the label with the larger share."""
    loss = loss_fn(logits.float(), y)
    loss_sum.add_(loss.detach() * y.shape[0])
    hard = y if y.dim() == 1 else y.argmax(1)
    correct.add_((logits.detach().argmax(1) == hard).sum())
    return loss


@contextlib.contextmanager
def model_restored(model: nn.Module) -> Iterator[None]:
    """Run dummy steps on `model` and leave it as it was: weights and BatchNorm statistics, and
    its training/evaluation mode."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    try:
        yield
    finally:
        model.load_state_dict(saved)
        model.train(was_training)


class CapturedStep:
    """Forward, loss, metrics and backward of one batch shape, captured once as a CUDA graph.

    Each call copies a batch into the graph's input tensors and replays it: one launch instead of
    dozens, which is what a small model's training step costs on the host. The optimizer step
    stays outside (the schedule changes its learning rate and momentum as Python numbers; with
    fp16 the GradScaler checks the gradients there). Gradients live in the graph's memory and
    each replay overwrites them: between steps they must be zeroed in place, never set to None.
    The loss sum and correct count accumulate on the device.
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module, runtime: Runtime,
                 shape: tuple[int, ...], count: Callable[..., torch.Tensor],
                 scaler: torch.amp.GradScaler | None = None, warmup: int = 3,
                 classes: int = 0) -> None:
        dev = runtime.device
        self.shape = tuple(shape)
        self.x = blank_batch(shape, dev, runtime.memory_format)  # the loaders' strides
        self.y = (torch.zeros(shape[0], classes, device=dev) if classes  # soft targets
                  else torch.zeros(shape[0], dtype=torch.long, device=dev))
        self.loss_sum = torch.zeros((), device=dev)
        self.correct = torch.zeros((), dtype=torch.long, device=dev)
        params = list(model.parameters())
        if scaler is not None:  # its scale tensor must exist before capture (made lazily)
            scaler.scale(torch.ones((), device=dev))

        def body() -> None:
            with runtime.autocast(cache_enabled=False):
                logits = model(self.x)
            loss = count(logits, self.y, loss_fn, self.loss_sum, self.correct)
            (scaler.scale(loss) if scaler is not None else loss).backward()

        with model_restored(model):  # BatchNorm statistics moved by the warm-up are put back
            model.train()
            # Warm-up (cuDNN and cuBLAS set-up, compilation) and capture on one side stream: the
            # libraries' per-stream state exists before capture, and autograd's gradient
            # accumulation runs on the stream it was first used on.
            side = torch.cuda.Stream(dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    for p in params:
                        p.grad = None
                    body()
            torch.cuda.synchronize(dev)
            for p in params:  # the captured backward allocates .grad in the graph's memory
                p.grad = None
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, stream=side, capture_error_mode="thread_local"):
                body()
            torch.cuda.current_stream(dev).wait_stream(side)
        self.loss_sum.zero_()
        self.correct.zero_()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x.copy_(x)
        self.y.copy_(y)
        self.graph.replay()


class StepGraphs:
    """A run's training-step fast paths. `off_reason` says why capture is off from the start
    (None: capture is wanted); `status` is what metrics.json records."""

    def __init__(self, runtime: Runtime, loss_fn: nn.Module, off_reason: str | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.loss_fn = loss_fn
        self.count = (torch.compile(loss_and_count) if runtime.compile_mode is not None
                      else loss_and_count)
        self.off_reason = off_reason
        self.warn = warn or (lambda text: None)
        self.step: CapturedStep | None = None
        self.failure: str | None = None

    @property
    def status(self) -> str:
        if self.step is not None:
            return "captured"
        if self.failure is not None:
            return f"failed: {self.failure}"
        return f"off: {self.off_reason}" if self.off_reason else "off"

    def step_for(self, model: nn.Module, loader: DeviceLoader,
                 scaler: torch.amp.GradScaler | None = None) -> CapturedStep | None:
        """The captured step for `loader`'s full batches (captured on first use), or None."""
        if self.off_reason is not None or self.failure is not None:
            return None
        shape = (min(loader.batch_size, loader.num_samples), *loader.sample_shape)
        if self.step is not None and self.step.shape == shape:
            return self.step
        error: Exception | None = None
        for _attempt in range(2):  # a second try: a first capture in a process has been seen to fail
            try:
                self.step = CapturedStep(model, self.loss_fn, self.runtime, shape, self.count,
                                         scaler, classes=getattr(loader, "soft_classes", 0))
                return self.step
            except Exception as err:  # noqa: BLE001 (an op that cannot be captured)
                error = err
                for p in model.parameters():
                    p.grad = None
                with contextlib.suppress(Exception):
                    torch.cuda.synchronize(self.runtime.device)
        message = str(error).splitlines()[0] if str(error) else ""
        self.failure = f"{type(error).__name__}: {message}"[:300]
        self.warn(f"the training step could not be captured as a CUDA graph ({self.failure}); "
                  f"training goes on without it (trainer.cuda_graph=false skips the attempt).")
        return None


def eager_graphs(runtime: Runtime, loss_fn: nn.Module) -> StepGraphs:
    """No capture: the loop's plain path (tests, and loops run outside a training run)."""
    return StepGraphs(runtime, loss_fn, off_reason="not asked for")
