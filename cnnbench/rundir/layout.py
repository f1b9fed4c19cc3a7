"""The run directory's layout: file names, status values, and where runs are found."""
from __future__ import annotations

import os
from pathlib import Path

METRICS_FILE = "metrics.json"


HISTORY_FILE = "history.csv"


TB_DIR = "."       # TensorBoard events go in the run directory itself


OLD_TB_DIR = "tb"  # where runs before that kept them


CHECKPOINT_DIR = "checkpoints"


LAST_CHECKPOINT = "last.pt"


BEST_CHECKPOINT = "best.pt"


HYDRA_DIR = ".hydra"


LOCK_FILE = ".cnnbench.lock"


LOG_FILE = "train.log"


CONFIG_HASH_FILE = "config_hash"


EARLIER_DIR = ".earlier"


SWEEP_RECORD_FILE = ".cnnbench_sweep.json"


STARTING, RUNNING, COMPLETED = "starting", "running", "completed"


FAILED, INTERRUPTED, DIVERGED = "failed", "interrupted", "diverged"


NOT_STARTED = "not started"  # a sweep job the sweep was stopped before it started


PRUNED = "pruned"  # a search's trial stopped at an epoch's end: its pruner judged it hopeless


FINAL_STATUSES = (COMPLETED, FAILED, INTERRUPTED, DIVERGED, NOT_STARTED, PRUNED)


def metrics_file(run_dir: Path) -> Path:
    return Path(run_dir) / METRICS_FILE


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def best_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / BEST_CHECKPOINT


_NOT_RUNS = {OLD_TB_DIR, CHECKPOINT_DIR, "__pycache__"}  # folders inside a run, never runs


def is_run_dir(path: Path) -> bool:
    """A run directory holds metrics.json or .hydra/config.yaml (Hydra writes the latter before
    the run starts, so a run that died early is still found)."""
    return (metrics_file(path).is_file()
            or (path / HYDRA_DIR / "config.yaml").is_file())


def enclosing_run(path: Path) -> Path | None:
    """The run directory that `path` lies inside (its nearest folder above that is a run); None
    when none is. Runs hold no nested runs: everything that finds runs (compare, a sweep run
    again, eval's checkpoint=) stops at the first run directory it meets."""
    here = Path(os.path.abspath(path))
    return next((folder for folder in here.parents if is_run_dir(folder)), None)


def runs_inside(folder: Path) -> tuple[str, Path] | None:
    """Where `folder` is not a run but holds runs (a sweep, or a folder of runs): a phrase that
    says so, and one of its runs (one with a last.pt where there is one) for an example; None
    otherwise."""
    folder = Path(folder)
    if not folder.is_dir() or is_run_dir(folder):
        return None
    runs = find_run_dirs(folder)
    if not runs:
        return None
    example = next((r for r in runs if last_checkpoint(r).is_file()), runs[0])
    swept = any((folder / name).exists() for name in (SWEEP_RECORD_FILE, "multirun.yaml"))
    kind = "a sweep directory" if swept else "a folder"
    return f"{folder} is {kind} that holds {len(runs)} run{'s' * (len(runs) != 1)}", example


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory at or below `root`, in sorted order (runs hold no nested runs)."""
    if is_run_dir(root):
        return [root]
    found = []
    for folder, dirs, _ in os.walk(root):
        here = Path(folder)
        if here != root and is_run_dir(here):
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _NOT_RUNS)
    return sorted(found)
