"""The run directory contract: its file names, the status values, metrics.json and the lock.

Every module that reads or writes a run's files takes the names from here; `RunRecord` is the
one writer of a run's metrics.json, so a run's status has one owner.

    <run>/.hydra/          config.yaml, overrides.yaml, hydra.yaml (written by Hydra)
    <run>/metrics.json     status, reason, phase and every metric (RunRecord)
    <run>/history.csv      one row per epoch
    <run>/events.out.*     TensorBoard events, in the run directory itself: TensorBoard names
                           each run by its directory (older runs have them in <run>/tb/)
    <run>/checkpoints/     best.pt, last.pt
    <run>/.cnnbench.lock   the pid of the process writing the run, while it runs
    <run>/config_hash      the hash of the run's resolved config: a sweep job's identity
    <run>/.earlier/<n>/    the files of an earlier attempt of a sweep job that was run again

A sweep directory holds its jobs' run directories, `.cnnbench.lock` while a `cnnbench train -m`
runs it, and `.cnnbench_sweep.json`: what the latest run of the sweep did with each job.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from cnnbench.errors import UserError

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
FINAL_STATUSES = (COMPLETED, FAILED, INTERRUPTED, DIVERGED, NOT_STARTED)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON to a temporary file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=str)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def metrics_file(run_dir: Path) -> Path:
    return Path(run_dir) / METRICS_FILE


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def best_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / BEST_CHECKPOINT


NO_METRICS, UNREADABLE = f"no {METRICS_FILE}", "unreadable"  # statuses of runs that lack one


def load_metrics(run_dir: Path) -> tuple[dict[str, Any], str, str | None]:
    """(metrics, status, reason) as the run's metrics.json says; a run without the file is
    NO_METRICS and one whose file cannot be read (or is not a JSON object) UNREADABLE, with the
    reason. Never raises: a run directory is someone else's files."""
    path = metrics_file(run_dir)
    if not path.is_file():
        return {}, NO_METRICS, f"the run wrote no {METRICS_FILE} (it may not have started)"
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return {}, UNREADABLE, f"{METRICS_FILE}: {err}"
    return data, str(data.get("status", "unknown")), data.get("reason")


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json as a dict; {} when it is missing or not a JSON object."""
    return load_metrics(run_dir)[0]


_NOT_RUNS = {OLD_TB_DIR, CHECKPOINT_DIR, "__pycache__"}  # folders inside a run, never runs


def is_run_dir(path: Path) -> bool:
    """A run directory holds metrics.json or .hydra/config.yaml (Hydra writes the latter before
    the run starts, so a run that died early is still found)."""
    return (metrics_file(path).is_file()
            or (path / HYDRA_DIR / "config.yaml").is_file())


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


def run_status(run_dir: Path) -> str | None:
    status = read_metrics(run_dir).get("status")
    return status if isinstance(status, str) else None


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


class RunRecord:
    """The one owner of a run's metrics.json: updates merge into it, `finish` ends it.

    Processes other than the writer (DDP ranks > 0) keep the dict without writing the file.
    """

    def __init__(self, run_dir: Path, metrics: Mapping[str, Any], writer: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.metrics: dict[str, Any] = dict(metrics)
        self.writer = writer
        self._phase_start = time.perf_counter()

    def update(self, **values: Any) -> None:
        self.metrics.update(values)
        if self.writer:
            write_json_atomic(metrics_file(self.run_dir), self.metrics)

    def phase(self, name: str) -> None:
        """Enter a phase of the run ("data", "training", "testing", ...): metrics.json says where
        the run is, and `phase_seconds` how long each finished phase took."""
        now = time.perf_counter()
        previous = self.metrics.get("phase")
        seconds = dict(self.metrics.get("phase_seconds") or {})
        if previous:
            seconds[previous] = round(seconds.get(previous, 0.0) + now - self._phase_start, 4)
        self._phase_start = now
        self.update(phase=name, phase_seconds=seconds)

    def finish(self, status: str, reason: str | None = None, **values: Any) -> None:
        """The final status; a run that ends early keeps the phase it ended in."""
        ended_in = self.metrics.get("phase")
        self.phase("done")
        extra = {"ended_in_phase": ended_in} if status != COMPLETED else {}
        self.update(status=status, reason=reason, **extra, **values)


def record_outcome(run_dir: Path, status: str, reason: str,
                   details: Mapping[str, Any] | None = None) -> None:
    """Give a run that ended without saying so a final status (e.g. it failed before it began
    training, its process was killed, or its sweep stopped before it started); a final status
    already written is kept."""
    metrics = read_metrics(run_dir)
    if metrics.get("status") not in FINAL_STATUSES:
        write_json_atomic(metrics_file(run_dir),
                          {**metrics, "status": status, "reason": reason, **(details or {})})


def write_config_hash(run_dir: Path, digest: str) -> None:
    path = Path(run_dir) / CONFIG_HASH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if read_config_hash(run_dir) != digest:
        path.write_text(digest + "\n")


def job_starts(run_dir: Path, digest: str) -> None:
    """A run's first act: store its identity, and turn a job its sweep had marked `not started`
    into one that is starting (so that a failure before training is recorded over it)."""
    write_config_hash(run_dir, digest)
    if run_status(run_dir) == NOT_STARTED:
        write_json_atomic(metrics_file(run_dir), {"status": STARTING})


def read_config_hash(run_dir: Path) -> str | None:
    try:
        return (Path(run_dir) / CONFIG_HASH_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


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


class RunLock:
    """<run>/.cnnbench.lock holds the writer's host and pid: two processes never write one run
    directory at once. A lock whose process is gone (killed, machine restarted) is stale."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def owner(self) -> dict[str, Any] | None:
        """The live process holding the lock, or None (no lock, or a stale one)."""
        try:
            owner = json.loads(self.path.read_text())
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return owner  # another machine's process: assume it is alive
        return owner if _alive(pid) and pid != os.getpid() else None

    def refuse_if_held(self) -> None:
        """A UserError when a live process holds the lock (checked before anything is written)."""
        owner = self.owner()
        if owner is not None:
            raise UserError(
                f"{self.path.parent} is being written by another cnnbench process (pid "
                f"{owner['pid']} on {owner['host']}, since {owner.get('since', '?')}). Two "
                f"processes must not write one run: wait for it to end, or stop it first. If no "
                f"such process exists, delete {self.path}.")

    def acquire(self) -> None:
        self.refuse_if_held()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.path.unlink()
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path(f"/proc/{pid}/stat").exists():  # a zombie is not alive
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True
    return True
