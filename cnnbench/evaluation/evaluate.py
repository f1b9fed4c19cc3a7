"""Evaluate a trained model on the test set: metrics, shift robustness, pictures, table.

Used after training (on the restored best weights) and by `cnnbench eval` on a checkpoint. The
model runs over the test set once for every metric; each shift costs one more pass.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn

from ..data import DeviceLoader, ImageData
from ..runtime import Runtime
from .metrics import classification_metrics, worst_mistakes
from .predict import predict
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
                      tb=None, step: int = 0, console: Console | None = None,
                      title: str = "") -> Evaluation:
    """Everything issue 5 asks of a run; `tb` is a TensorBoardSink (or None)."""
    if not settings.enabled:
        return Evaluation()
    start = time.perf_counter()
    loader = DeviceLoader(data.test, batch_size, runtime.device, data.mean, data.std,
                          channels_last=runtime.channels_last)
    logits, labels = predict(model, loader, runtime)
    metrics = classification_metrics(logits, labels, data.classes)
    for k in settings.shifts:
        metrics[f"shift/{k}px"] = shift_accuracy(model, data.test, k, runtime, batch_size,
                                                 data.mean, data.std)
    mistakes = worst_mistakes(logits, labels, data.classes, settings.misclassified)
    metrics["misclassified"] = mistakes
    scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
    if tb is not None:
        tb.scalars(scalars, step)
    acc = (logits.argmax(1) == labels).float().mean().item()
    title = f"{title}{', ' if title else ''}test accuracy {100 * acc:.2f}%"
    if settings.plots:
        warnings = write_plots(Path(run_dir), data, metrics, mistakes, title, tb, step,
                               grid=settings.misclassified > 0)
        if warnings:
            metrics["evaluation_warnings"] = warnings
            if console is not None:
                for w in warnings:
                    console.print(f"[bold yellow]warning:[/] {w}", highlight=False)
    if console is not None and settings.table:
        console.print(per_class_table(metrics["per_class"], settings.worst_classes))
    if console is not None and settings.shifts:
        parts = [f"0 px {100 * acc:.2f}%"] + [f"{k} px {100 * metrics[f'shift/{k}px']:.2f}%"
                                              for k in settings.shifts]
        console.print("shift robustness (test images moved right and down): " + " | ".join(parts),
                      highlight=False)
    metrics["evaluation_seconds"] = time.perf_counter() - start
    return Evaluation(metrics, scalars)


def write_plots(run_dir: Path, data: ImageData, metrics: dict[str, Any], mistakes: list,
                title: str, tb, step: int, grid: bool = True) -> list[str]:
    """confusion_matrix.png and misclassified.png (also as TensorBoard images).

    A picture that cannot be drawn is a warning, not a lost run: the numbers are already safe.
    """
    from .plots import confusion_matrix_figure, misclassified_figure, read_png, save_png

    jobs = [(CONFUSION_PNG, "test/confusion_matrix",
             lambda: confusion_matrix_figure(metrics["confusion_matrix"], data.classes, title))]
    if grid:
        jobs.append((MISCLASSIFIED_PNG, "test/misclassified",
                     lambda: misclassified_figure(data.test.images.numpy(), mistakes, title)))
    warnings = []
    for name, tag, make in jobs:
        try:
            path = save_png(make(), run_dir / name)
            if tb is not None:
                tb.image(tag, read_png(path), step)
        except Exception as err:  # noqa: BLE001 (any drawing failure)
            warnings.append(f"{name} could not be written ({type(err).__name__}: {err})")
    return warnings
