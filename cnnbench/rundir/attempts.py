"""Earlier attempts of a run: what starting it left behind, and setting an attempt aside."""
from __future__ import annotations

from pathlib import Path

from cnnbench.rundir.layout import (
    CHECKPOINT_DIR,
    CONFIG_HASH_FILE,
    EARLIER_DIR,
    HYDRA_DIR,
    LOCK_FILE,
    LOG_FILE,
    METRICS_FILE,
    metrics_file,
)


def holds_run(run_dir: Path) -> bool:
    """Whether a run has already written into `run_dir` (its metrics or checkpoints)."""
    return metrics_file(run_dir).exists() or (Path(run_dir) / CHECKPOINT_DIR).is_dir()


def discard_unstarted(run_dir: Path) -> bool:
    """Remove a run directory that holds nothing but what starting it wrote (Hydra's config,
    the log, a status that says it failed): a mistyped command leaves no failed run behind to
    clutter `compare` and TensorBoard. A directory with anything else (curves, checkpoints, a
    resumed run's history) is kept. Returns whether it was removed."""
    import shutil

    run_dir = Path(run_dir)
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    if not names <= {HYDRA_DIR, LOG_FILE, METRICS_FILE, LOCK_FILE, CONFIG_HASH_FILE}:
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def set_aside(run_dir: Path) -> Path | None:
    """Move what an earlier attempt of a run wrote (metrics, curves, checkpoints, log, pictures)
    into <run>/.earlier/<n>/, so that the run can start again from the beginning in its own
    directory; its config and identity stay. Returns that folder (None: nothing to move)."""
    run_dir = Path(run_dir)
    keep = {HYDRA_DIR, CONFIG_HASH_FILE, LOCK_FILE, EARLIER_DIR}
    entries = [p for p in sorted(run_dir.iterdir()) if p.name not in keep]
    if not entries:
        return None
    earlier = run_dir / EARLIER_DIR
    n = 1 + max((int(p.name) for p in earlier.glob("*") if p.name.isdigit()), default=0)
    target = earlier / str(n)
    target.mkdir(parents=True)
    for entry in entries:
        entry.rename(target / entry.name)
    return target
