"""The fit loop: train_one_epoch, evaluate, and fit (epochs, early stopping, checkpoints)."""
from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from .data import DeviceLoader, blank_batch
from .data.loader import batch_layout
from .distributed import unwrap
from .ema import WeightEMA
from .runtime import Runtime
from .schedule import LRSchedule
from .settings import EarlyStopping

PROGRESS_EVERY = 25  # batches between live updates (each one waits for the GPU)


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


def loss_and_count(logits: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
                   loss_sum: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """The batch's loss (in fp32); adds its summed loss and its correct predictions to the
    running totals, on the device (no synchronization)."""
    loss = loss_fn(logits.float(), y)
    loss_sum.add_(loss.detach() * y.shape[0])
    correct.add_((logits.detach().argmax(1) == y).sum())
    return loss


_compiled_loss_and_count = None


def _counter(runtime: Runtime) -> Callable[..., torch.Tensor]:
    """`loss_and_count`, compiled (a few fused kernels instead of about ten small ones per step)
    when the model is compiled too."""
    global _compiled_loss_and_count
    if runtime.compile_mode is None:
        return loss_and_count
    if _compiled_loss_and_count is None:
        _compiled_loss_and_count = torch.compile(loss_and_count)
    return _compiled_loss_and_count


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
    stays outside (the schedule changes its learning rate and momentum as Python numbers).
    Gradients live in the graph's memory and each replay overwrites them: between steps they must
    be zeroed in place, never set to None. The loss sum and correct count accumulate on the device.
    """

    def __init__(self, model: nn.Module, loss_fn: nn.Module, runtime: Runtime,
                 shape: tuple[int, ...], warmup: int = 3) -> None:
        dev = runtime.device
        self.shape = tuple(shape)
        self.x = blank_batch(shape, dev, runtime.memory_format)  # the loaders' strides: no recompilation
        self.y = torch.zeros(shape[0], dtype=torch.long, device=dev)
        self.loss_sum = torch.zeros((), device=dev)
        self.correct = torch.zeros((), dtype=torch.long, device=dev)
        count = _counter(runtime)
        params = list(model.parameters())

        def body() -> None:
            with runtime.autocast(cache_enabled=False):
                logits = model(self.x)
            count(logits, self.y, loss_fn, self.loss_sum, self.correct).backward()

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


_captured: "weakref.WeakKeyDictionary[nn.Module, CapturedStep | str]" = weakref.WeakKeyDictionary()


def captured_step(model: nn.Module, loss_fn: nn.Module, runtime: Runtime,
                  loader: DeviceLoader) -> CapturedStep | None:
    """The model's captured training step for `loader`'s full batches (captured on first use), or
    None: capture is off, or it failed once (then training goes on without it, with a warning)."""
    if not runtime.capture_step or isinstance(model, nn.parallel.DistributedDataParallel):
        return None  # (DDP's gradient all-reduce stays outside graphs)
    shape = (min(loader.batch_size, loader.num_samples), *loader.images.shape[1:])
    step = _captured.get(model)
    if isinstance(step, CapturedStep) and step.shape == shape:
        return step
    if isinstance(step, str):  # failed before
        return None
    error = None
    for _attempt in range(2):  # a second try: a first capture in a process has been seen to fail
        try:
            step = CapturedStep(model, loss_fn, runtime, shape)
            _captured[model] = step
            return step
        except Exception as err:  # an op that cannot be captured: train without the graph
            error = err
            for p in model.parameters():
                p.grad = None
            try:
                torch.cuda.synchronize(runtime.device)
            except Exception:
                pass
    message = str(error).splitlines()[0] if str(error) else ""
    _captured[model] = f"failed: {type(error).__name__}: {message}"
    warnings.warn(f"trainer.cuda_graph: capture failed ({type(error).__name__}: {message}); "
                  "training goes on without CUDA graphs.")
    return None


def capture_status(model: nn.Module) -> str:
    """'captured', 'failed: ...' or 'off', for metrics.json."""
    step = _captured.get(model)
    return "captured" if isinstance(step, CapturedStep) else (step or "off")


def train_one_epoch(model: nn.Module, loader: DeviceLoader, optimizer: torch.optim.Optimizer,
                    loss_fn: nn.Module, runtime: Runtime, scaler: torch.amp.GradScaler | None,
                    schedule: LRSchedule, on_progress: Callable[..., None] | None = None,
                    reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                    ema: WeightEMA | None = None) -> dict:
    """One pass over `loader`; returns mean loss, accuracy, images seen and seconds.

    `reduce` sums the epoch's totals across processes (DDP); the default is a single process.
    `ema`, when given, is updated after every optimizer step."""
    graph = captured_step(model, loss_fn, runtime, loader) if scaler is None else None
    model.train()
    if graph is not None:  # the graph adds to its own totals; the other batches join them
        loss_sum, correct = graph.loss_sum.zero_(), graph.correct.zero_()
    else:
        loss_sum = torch.zeros((), device=runtime.device)
        correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    seen = 0
    count = _counter(runtime)
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
            optimizer.step()
            stepped(step, y.shape[0])
            continue
        if runtime.cuda_graphs:  # a new iteration: the graphs may reuse the last step's outputs
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            logits = model(x)
        loss = count(logits, y, loss_fn, loss_sum, correct)
        # with a captured step, gradients stay where the graph writes them: zeroed, not dropped
        optimizer.zero_grad(set_to_none=graph is None)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        stepped(step, y.shape[0])
    totals = reduce(torch.stack([loss_sum.float(), correct.float(),
                                 torch.tensor(float(seen), device=runtime.device)]))
    loss_total, correct_total, seen = totals.tolist()
    mean_loss = loss_total / max(seen, 1)
    seconds = time.perf_counter() - start
    if not math.isfinite(mean_loss):
        raise Diverged(f"loss is {mean_loss}")
    return {"loss": mean_loss, "acc": correct_total / max(seen, 1), "images": int(seen),
            "seconds": seconds}


def _report(step: int, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int, start: float,
            on_progress: Callable[..., None]) -> None:
    mean_loss = loss_sum.item() / seen
    if not math.isfinite(mean_loss):
        raise Diverged(f"loss is {mean_loss} at batch {step}")
    on_progress(step, mean_loss, correct.item() / seen, seen / (time.perf_counter() - start))


@torch.no_grad()
def evaluate(model: nn.Module, loader: DeviceLoader, loss_fn: nn.Module, runtime: Runtime,
             tta_flip: bool = False) -> dict:
    """Mean loss and top-1 accuracy of `model` over `loader`; with `tta_flip`, of the mean of the
    logits of each image and its mirror image (test-time augmentation)."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    count = _counter(runtime)
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


def warm_up(model: nn.Module, loss_fn: nn.Module, runtime: Runtime, train_loader: DeviceLoader,
            eval_loaders: list[DeviceLoader], repeats: int = 3,
            optimizer: torch.optim.Optimizer | None = None) -> float:
    """Run `model` on zero batches of every shape it will meet, in training (with backward) and
    evaluation mode, so that torch.compile compiles (and CUDA graphs are recorded) here rather
    than inside the timed epochs; with `optimizer`, also one optimizer step, and the loader's
    preparation of a batch, so that their first launches are not timed either. Leaves the model
    and the optimizer as they were: weights and BatchNorm statistics restored, no gradients
    kept, no optimizer state (it is created at the first real step, as without the warm-up).
    Returns the seconds it took.
    """
    start = time.perf_counter()
    sample = tuple(train_loader.images.shape[1:])

    def sizes(loader: DeviceLoader) -> list[int]:
        n, b = loader.num_samples, loader.batch_size
        last = n % b if (n % b and not loader.drop_last) else 0
        return [s for s in (min(b, n), last) if s]

    def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = blank_batch((size, *sample), runtime.device, runtime.memory_format)  # loaders' layout
        return x, torch.zeros(size, dtype=torch.long, device=runtime.device)

    count = _counter(runtime)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            return model(x)

    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    try:
        with model_restored(model):
            model.train()
            for size in sizes(train_loader):
                x, y = batch(size)
                for _ in range(repeats):
                    loss = count(forward(x), y, loss_fn, loss_sum, correct)
                    for p in model.parameters():  # as in training: no gradient accumulation (a
                        p.grad = None             # .grad made inside a CUDA graph is overwritten)
                    loss.backward()
            model.eval()
            with torch.no_grad():
                for size in sorted({s for loader in eval_loaders for s in sizes(loader)}):
                    x, y = batch(size)
                    for _ in range(repeats):
                        count(forward(x), y, loss_fn, loss_sum, correct)
    finally:
        for p in model.parameters():
            p.grad = None
    loss = None  # no autograd graph may stay alive into the capture
    step = captured_step(model, loss_fn, runtime, train_loader)  # the CUDA graph, when asked for
    if optimizer is not None:
        # One training step, the optimizer's included, undone: weights and statistics come back, and
        # the optimizer's state is emptied (it is built lazily at the first step, so the real
        # first step starts from where it would have). Its learning rates are kept.
        x, y = batch(sizes(train_loader)[0])
        with model_restored(model):
            model.train()
            if step is not None:
                step(x, y)
            else:
                count(forward(x), y, loss_fn, loss_sum, correct).backward()
            optimizer.step()
        optimizer.state.clear()
        if step is not None:  # the graph's gradients stay (each replay overwrites them)
            step.loss_sum.zero_()
            step.correct.zero_()
        else:
            for p in model.parameters():
                p.grad = None
    if isinstance(train_loader, DeviceLoader):  # (a streaming loader's images are on the host)
        train_loader.warm_up()
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    return time.perf_counter() - start


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
    """Runs epochs of training and validation, and reports each epoch to `on_epoch_end`.

    With `ema`, validation and the best weights are those of the weight average. `keep_best`
    keeps a copy of the best epoch's weights for `restore_best`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: LRSchedule,
                 loss_fn: nn.Module, runtime: Runtime, train_loader: DeviceLoader,
                 val_loader: DeviceLoader | None, epochs: int, early_stopping: EarlyStopping,
                 scaler: torch.amp.GradScaler | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
                 ema: WeightEMA | None = None, keep_best: bool = True) -> None:
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
        while self.state.epoch < self.epochs:
            epoch = self.state.epoch + 1
            if on_epoch_start:
                on_epoch_start(epoch)
            lr = self.optimizer.param_groups[0]["lr"]
            train = train_one_epoch(self.model, self.train_loader, self.optimizer, self.loss_fn,
                                    self.runtime, self.scaler, self.schedule, on_progress,
                                    self.reduce, self.ema)
            row = {"epoch": epoch, "train/loss": train["loss"], "train/acc": train["acc"],
                   "val/loss": None, "val/acc": None, "lr": lr,
                   "epoch_seconds": train["seconds"],
                   "images_per_s": train["images"] / max(train["seconds"], 1e-9)}
            with self.evaluated_weights():
                if self.val_loader is not None:
                    val = evaluate(unwrap(self.model), self.val_loader, self.loss_fn, self.runtime)
                    row["val/loss"], row["val/acc"] = val["loss"], val["acc"]
                score = self.monitored(row)
                is_best = self.state.improved(score, mode)
                if is_best and self.keep_best:
                    self.state.best_weights = copy.deepcopy(unwrap(self.model).state_dict())
            self.schedule.after_epoch(row["val/loss"] if row["val/loss"] is not None
                                      else row["train/loss"])
            self.state.epoch = epoch
            if is_best:
                self.state.best_score, self.state.best_epoch, self.state.bad_epochs = score, epoch, 0
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

    def final_weights(self, restore_best: bool) -> None:
        """Leave the model with the weights training produced for testing and saving: the best
        epoch's (`restore_best`), else the weight average's (with `ema`), else the last ones."""
        if restore_best and self.state.best_weights is not None:
            self.restore_best()
        elif self.ema is not None:
            self.ema.apply()
