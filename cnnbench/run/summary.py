"""What a run prints first (what trains where, and where a resumed run takes up again) and
what a completed run prints last: its results as a table (one line for a sweep's job), then
its run directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape

from cnnbench.engine.target import target_summary
from cnnbench.run.build import Parts
from cnnbench.run.energy import energy_summary
from cnnbench.run.sinks import print_paths, summary_table
from cnnbench.settings.trainer import TrainerSettings


def print_start(console: Console, options: Mapping[str, Any], parts: Parts, run_dir: Path,
                settings: TrainerSettings, job: str = "") -> None:
    """The run's first line (model, data, device with its CPU threads, AMP, directory, and the
    torchrun `job` with where its run directory is) and, for a resumed run, the epoch and
    checkpoint it continues from."""
    runtime = parts.runtime
    threads = f" ({runtime.threads} thread{'s' if runtime.threads != 1 else ''})" \
        if runtime.device.type == "cpu" else ""
    console.print(
        f"[bold]cnnbench[/] {options['model']} on {options['dataset']} "
        f"({parts.params:,} parameters) | {runtime.device_name}{threads}, AMP "
        f"{runtime.amp_name} | {escape(str(run_dir))}{' | ' + escape(job) if job else ''}",
        soft_wrap=True)
    if parts.resumed_at is not None:
        console.print(f"resuming from epoch {parts.resumed_at} of {settings.epochs} (from "
                      f"{settings.resume})", markup=False, highlight=False, soft_wrap=True)


def print_summary(console: Console, title: str, parts: Parts, test: Mapping[str, float],
                  train_seconds: float, metrics: Mapping[str, Any], run_dir: Path,
                  brief: bool) -> None:
    """The run's results from its `test` loss and accuracy and its `metrics`; `brief`: one
    line (a sweep's job: the sweep prints the table)."""
    fit, runtime = parts.fit, parts.runtime
    if brief:
        console.print(
            f"{title}: completed, test accuracy {100 * test['acc']:.2f}% after "
            f"{fit.state.epoch} epoch{'s' if fit.state.epoch != 1 else ''}, "
            f"{train_seconds:.1f} s of training | {run_dir}",
            markup=False, highlight=False, soft_wrap=True)
        return
    console.print(summary_table(title, {
        "test accuracy": f"{100 * test['acc']:.2f}%", "test loss": f"{test['loss']:.4f}",
        "epochs": f"{fit.state.epoch} (best {fit.state.best_epoch})",
        "train seconds": f"{train_seconds:.1f}",
        "images/s": f"{metrics['images_per_s']:,.0f}",
        **target_summary(fit.target), **energy_summary(metrics.get("energy_joules")),
        "parameters": f"{parts.params:,}",
        "device": f"{runtime.device_name} (AMP {runtime.amp_name})",
    }))
    print_paths(console, {"run directory": run_dir})
