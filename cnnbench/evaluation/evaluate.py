"""Evaluate a trained model on the test set: loss, accuracy, metrics, shift robustness, pictures.

Used after training (on the restored best weights) and by `cnnbench eval` on a checkpoint. The
model runs over the test set once for the loss, the accuracy and every metric; each shift costs
one more pass. The two pictures (`pictures`: a few hundredths of a second) are drawn last.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn

from cnnbench.data import DeviceLoader, ImageData
from cnnbench.engine.finite import require_finite, require_finite_outputs
from cnnbench.engine.runtime import Runtime
from cnnbench.evaluation.metrics import classification_metrics, worst_mistakes
from cnnbench.evaluation.pictures import write_pictures
from cnnbench.evaluation.predict import loss_and_accuracy, predict
from cnnbench.evaluation.report import per_class_table, shift_lines
from cnnbench.evaluation.shift import shift_accuracy
from cnnbench.settings.evaluation import EvaluationSettings
from cnnbench.terminal import line_width


@dataclass
class Evaluation:
    metrics: dict[str, Any] = field(default_factory=dict)   # entries for metrics.json
    scalars: dict[str, float] = field(default_factory=dict)  # the numbers also in TensorBoard


def evaluate_test_set(model: nn.Module, data: ImageData, runtime: Runtime,
                      settings: EvaluationSettings, run_dir: Path, *, batch_size: int,
                      loss_fn: nn.Module | None = None, tb=None, step: int = 0,
                      console: Console | None = None, title: str = "") -> Evaluation:
    """test/loss and test/acc (by `loss_fn`, cross-entropy by default) and, unless
    `settings.enabled` is off, every metric, the shifted test sets and the pictures; `tb` is a
    TensorBoardSink (or None). One pass over the test set. Outputs or a loss that are NaN or
    infinite raise finite.NotFinite before anything is reported or drawn."""
    start = time.perf_counter()
    loader = DeviceLoader(data.test, batch_size, runtime.device, data.mean, data.std,
                          channels_last=runtime.channels_last, resize_to=data.resize_to)
    logits, labels = predict(model, loader, runtime)
    require_finite_outputs(logits, "test images")
    metrics: dict[str, Any] = loss_and_accuracy(logits, labels, loss_fn or nn.CrossEntropyLoss())
    require_finite({"test loss": metrics["test/loss"]})
    if not settings.enabled:
        if tb is not None:
            tb.scalars(metrics, step)
        return Evaluation(metrics, dict(metrics))
    metrics.update(classification_metrics(logits, labels, data.classes))
    mistakes = worst_mistakes(logits, labels, data.classes, settings.misclassified)
    for k in settings.shifts:
        metrics[f"shift/{k}px"] = shift_accuracy(model, data.test, k, runtime, batch_size,
                                                 data.mean, data.std, data.resize_to)
    metrics["misclassified"] = mistakes
    scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
    if tb is not None:
        tb.scalars(scalars, step)
    report(console, settings, metrics)
    if settings.plots:
        title = f"{title}{', ' if title else ''}test accuracy {100 * metrics['test/acc']:.2f}%"
        warnings = draw_pictures(run_dir, metrics["confusion_matrix"], data, mistakes, title,
                                 grid=settings.misclassified > 0, tb=tb, step=step)
        if warnings:
            metrics["evaluation_warnings"] = warnings
            for w in warnings if console is not None else ():
                console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return Evaluation(metrics, scalars)


def draw_pictures(run_dir: Path, confusion: list, data: ImageData, mistakes: list, title: str,
                  *, grid: bool, tb, step: int) -> list[str]:
    """The run's two pictures (`write_pictures`), of the test images that `mistakes` index."""
    images = data.test.images[[m["index"] for m in mistakes]].cpu().numpy()
    picked = [{**m, "index": i} for i, m in enumerate(mistakes)]  # indices into `images`
    return write_pictures(Path(run_dir), confusion, list(data.classes), images, picked, title,
                          grid=grid, tb=tb, step=step)


def report(console: Console | None, settings: EvaluationSettings, metrics: dict[str, Any]) -> None:
    """The per-class table and the shift robustness line, on the terminal."""
    if console is not None and settings.table:
        console.print(per_class_table(metrics["per_class"], settings.worst_classes))
    if console is not None and settings.table and settings.shifts:
        accuracies = [(0, metrics["test/acc"])] + [(k, metrics[f"shift/{k}px"])
                                                   for k in settings.shifts]
        for line in shift_lines(accuracies, line_width(console)):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
