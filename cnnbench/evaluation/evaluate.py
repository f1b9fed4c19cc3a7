"""Evaluate a trained model on the test set: loss, accuracy, metrics, shift robustness, pictures.

Used after training (on the restored best weights) and by `cnnbench eval` on a checkpoint. The
model runs over the test set once for the loss, the accuracy and every metric; each shift costs
one more pass. The pictures are drawn in a background thread (matplotlib's import included)
while the shifted passes and the table run; they are written before the evaluation returns.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from torch import nn

from ..data import DeviceLoader, ImageData
from ..runtime import Runtime
from .metrics import classification_metrics, worst_mistakes
from .predict import loss_and_accuracy, predict
from .report import per_class_table
from .settings import EvaluationSettings
from .shift import shift_accuracy

CONFUSION_PNG = "confusion_matrix.png"
MISCLASSIFIED_PNG = "misclassified.png"


@dataclass
class Evaluation:
    metrics: dict[str, Any] = field(default_factory=dict)   # entries for metrics.json
    scalars: dict[str, float] = field(default_factory=dict)  # the numbers also in TensorBoard


def evaluate_test_set(model: nn.Module, data: ImageData, runtime: Runtime,
                      settings: EvaluationSettings, run_dir: Path, *, batch_size: int,
                      loss_fn: nn.Module | None = None, tb=None, step: int = 0,
                      console: Console | None = None, title: str = "") -> Evaluation:
    """test/loss and test/acc (by `loss_fn`, cross-entropy by default) and, unless
    `settings.enabled` is off, everything issue 5 asks of a run; `tb` is a TensorBoardSink (or
    None). One pass over the test set."""
    start = time.perf_counter()
    pictures = Pictures(Path(run_dir)) if settings.enabled and settings.plots else None
    try:
        loader = DeviceLoader(data.test, batch_size, runtime.device, data.mean, data.std,
                              channels_last=runtime.channels_last)
        logits, labels = predict(model, loader, runtime)
        metrics: dict[str, Any] = loss_and_accuracy(logits, labels,
                                                    loss_fn or nn.CrossEntropyLoss())
        if not settings.enabled:
            if tb is not None:
                tb.scalars(metrics, step)
            return Evaluation(metrics, dict(metrics))
        metrics.update(classification_metrics(logits, labels, data.classes))
        mistakes = worst_mistakes(logits, labels, data.classes, settings.misclassified)
        title = f"{title}{', ' if title else ''}test accuracy {100 * metrics['test/acc']:.2f}%"
        if pictures is not None:
            pictures.draw(metrics["confusion_matrix"], data, mistakes, title,
                          grid=settings.misclassified > 0)
        for k in settings.shifts:
            metrics[f"shift/{k}px"] = shift_accuracy(model, data.test, k, runtime, batch_size,
                                                     data.mean, data.std)
        metrics["misclassified"] = mistakes
        scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
        if tb is not None:
            tb.scalars(scalars, step)
        report(console, settings, metrics)
        if pictures is not None:
            warnings = pictures.finish(tb, step)
            if warnings:
                metrics["evaluation_warnings"] = warnings
                for w in warnings if console is not None else ():
                    console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    finally:
        if pictures is not None:
            pictures.cancel()
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return Evaluation(metrics, scalars)


def report(console: Console | None, settings: EvaluationSettings, metrics: dict[str, Any]) -> None:
    """The per-class table and the shift robustness line, on the terminal."""
    if console is not None and settings.table:
        console.print(per_class_table(metrics["per_class"], settings.worst_classes))
    if console is not None and settings.table and settings.shifts:
        acc = metrics["test/acc"]
        parts = [f"0 px {100 * acc:.2f}%"] + [f"{k} px {100 * metrics[f'shift/{k}px']:.2f}%"
                                              for k in settings.shifts]
        console.print("shift robustness (test images moved right and down): " + " | ".join(parts),
                      highlight=False)


class Pictures:
    """confusion_matrix.png and misclassified.png, drawn and written by a background thread
    (which imports matplotlib as soon as it starts); `finish` waits for them and adds them to
    TensorBoard. A picture that cannot be drawn is a warning, not a lost run: the numbers are
    already safe."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.jobs: queue.Queue = queue.Queue(maxsize=1)
        self.warnings: list[str] = []
        self.written: list[tuple[str, bytes, int, int]] = []  # (tag, PNG, height, width)
        self.thread = threading.Thread(target=self._work, name="cnnbench-pictures", daemon=True)
        self.thread.start()

    def draw(self, confusion: list, data: ImageData, mistakes: list, title: str,
             grid: bool = True) -> None:
        images = data.test.images[[m["index"] for m in mistakes]].cpu().numpy()
        picked = [{**m, "index": i} for i, m in enumerate(mistakes)]  # indices into `images`
        self.jobs.put((confusion, list(data.classes), images, picked, title, grid))

    def cancel(self) -> None:
        """Let the thread end when nothing (more) will be drawn."""
        try:
            self.jobs.put_nowait(None)
        except queue.Full:
            pass

    def finish(self, tb, step: int) -> list[str]:
        self.thread.join()
        for tag, png, height, width in self.written if tb is not None else ():
            tb.png(tag, png, height, width, step)
        return self.warnings

    def _work(self) -> None:
        try:
            from . import plots

            plots.warm_up()  # while the test pass runs
        except Exception as err:  # noqa: BLE001 (e.g. no matplotlib: the pictures are lost)
            plots, failure = None, err
        job = self.jobs.get()
        if job is None:
            return
        confusion, classes, images, mistakes, title, grid = job
        pictures: list[tuple[str, str, Callable]] = [
            (CONFUSION_PNG, "test/confusion_matrix",
             lambda: plots.confusion_matrix_figure(confusion, classes, title))]
        if grid:
            pictures.append((MISCLASSIFIED_PNG, "test/misclassified",
                             lambda: plots.misclassified_figure(images, mistakes, title)))
        for name, tag, make in pictures:
            try:
                if plots is None:
                    raise failure
                pixels = plots.render(make())
                png = plots.png_bytes(pixels)
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / name).write_bytes(png)
                self.written.append((tag, png, *pixels.shape[:2]))
            except Exception as err:  # noqa: BLE001 (any drawing failure)
                self.warnings.append(f"{name} could not be written ({type(err).__name__}: {err})")
