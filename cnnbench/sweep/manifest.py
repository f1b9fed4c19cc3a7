"""A sweep directory's manifest, `.cnnbench_sweep.json`: the record of the sweep's jobs.

For each job: its identity (the hash of its config, `settings.identity.config_hash`), its
directory (relative to the sweep directory), its overrides, the plan it last belonged to, what
that plan did with it and its latest attempt's outcome. A plan is one run of the sweep's command
(every batch its launcher planned); the jobs of the latest plan are the sweep: its outcome, its
summary, its advice and `cnnbench compare` read them. A job of an earlier plan that the latest
one no longer has (the command line changed) is listed apart, and a run directory below the
sweep that is not one of its jobs does not count. A search (`search: true`) is the exception:
each run of its command adds trials to one study, so every job of every plan is one of its jobs.
`stopped_by` names the job whose ending stopped the latest plan (hydra.launcher.fail_fast=true):
the sweep's exit code is that job's (`endings.sweep_exit_code`).

cnnbench's launchers write it (hydra_plugins/cnnbench_launcher/_planning.py) when they plan a
batch and when the batch ends. A sweep directory without one (made before the manifest, or by
another launcher) is read as every run directory below it, as before.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cnnbench import rundir
from cnnbench.rundir.stored_text import read_stored_json

VERSION = 2
SWEEP_MARKERS = (rundir.SWEEP_RECORD_FILE, "multirun.yaml")  # what only a sweep directory holds


@dataclass
class Job:
    digest: str                 # its identity: the hash of its config
    dir: str                    # its directory, relative to the sweep directory
    overrides: list[str]
    plan: int                   # the latest plan it was part of
    action: str | None = None   # what that plan did with it (sweep.plan: skip, resume, ...)
    earlier: str | None = None  # how the attempt before that plan had ended
    status: str | None = None   # its latest attempt's outcome, as last seen
    reason: str | None = None


@dataclass
class Manifest:
    sweep_dir: Path
    plan: int = 0               # the latest plan's number
    pid: int | None = None      # the process that made it
    jobs: list[Job] = field(default_factory=list)
    search: bool = False        # a search (cnnbench_optuna): every plan adds trials to one study
    stopped_by: str | None = None  # the directory of the job whose ending stopped the latest
    #                                plan (hydra.launcher.fail_fast), relative to the sweep's

    def path_of(self, job: Job) -> Path:
        return self.sweep_dir / job.dir

    def current(self) -> list[Job]:
        """The sweep's jobs: the latest plan's; for a search, every trial any plan ran (each
        run of the command adds trials to the same study)."""
        return [job for job in self.jobs if self.search or job.plan == self.plan]

    def earlier(self) -> list[Job]:
        """Jobs of earlier plans that the latest one no longer has (a search has none)."""
        return [job for job in self.jobs if not self.search and job.plan != self.plan]

    def find(self, directory: Path) -> Job | None:
        rel = os.path.relpath(directory, self.sweep_dir)
        return next((job for job in self.jobs if job.dir == rel), None)

    def run_dirs(self) -> list[Path]:
        """The directories of the latest plan's jobs that hold a run (a job the sweep never
        reached has none)."""
        return sorted(p for p in map(self.path_of, self.current()) if rundir.is_run_dir(p))

    def stopper(self) -> Path | None:
        """The directory of the job whose ending stopped the latest plan; None: none did."""
        return None if self.stopped_by is None else self.sweep_dir / self.stopped_by

    def as_json(self) -> dict[str, Any]:
        return {"version": VERSION, "plan": self.plan, "pid": self.pid, "search": self.search,
                "stopped_by": self.stopped_by,
                "jobs": [{"hash": job.digest, **{k: v for k, v in asdict(job).items()
                                                  if k != "digest"}} for job in self.jobs]}


JOB_KEYS = [f.name for f in fields(Job) if f.name not in ("digest", "dir", "overrides", "plan")]


def job_of(entry: Any) -> Job | None:
    """One job of the file, or None for an entry that is not one (never an error: the file may
    have been edited)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str) \
            or not isinstance(entry.get("dir"), str) or not isinstance(entry.get("plan"), int):
        return None
    if not inside(entry["dir"]):
        return None
    overrides = entry.get("overrides")
    overrides = [str(o) for o in overrides] if isinstance(overrides, list) else []
    extra = {k: entry.get(k) if isinstance(entry.get(k), str) else None for k in JOB_KEYS}
    return Job(entry["hash"], entry["dir"], overrides, entry["plan"], **extra)


def inside(relative: object) -> bool:
    """Whether `relative` names a directory inside the sweep's, as a job's always is."""
    return isinstance(relative, str) and not os.path.isabs(relative) \
        and ".." not in Path(relative).parts


def read_manifest(sweep_dir: Path) -> Manifest | None:
    """The sweep directory's manifest; None when it has none (or only the record that sweep
    directories kept before it, of what their latest run did), or when it cannot be read."""
    path = Path(sweep_dir) / rundir.SWEEP_RECORD_FILE
    try:
        data = read_stored_json(path)
    except (OSError, ValueError):  # StoredTextError is a ValueError
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION \
            or not isinstance(data.get("plan"), int) or not isinstance(data.get("jobs"), list):
        return None
    pid = data.get("pid") if isinstance(data.get("pid"), int) else None
    jobs = [job for job in map(job_of, data["jobs"]) if job is not None]
    stopped_by = data.get("stopped_by") if inside(data.get("stopped_by")) else None
    return Manifest(Path(sweep_dir), data["plan"], pid, jobs, data.get("search") is True,
                    stopped_by)


def write_manifest(manifest: Manifest) -> None:
    """Atomically: a reader (or a process killed mid-write) never sees half a manifest."""
    rundir.write_json_atomic(manifest.sweep_dir / rundir.SWEEP_RECORD_FILE, manifest.as_json())


def latest_outcome(directory: Path) -> tuple[str, str | None]:
    """(status, reason) of a job's latest attempt: its metrics.json's, or `not started` for a
    job whose directory holds no run yet."""
    if not rundir.is_run_dir(directory):
        return rundir.NOT_STARTED, None
    return rundir.load_metrics(directory)[1:]


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of the sweep's jobs: the latest plan's, from its manifest; for a
    sweep directory without one, every run directory below it."""
    manifest = read_manifest(sweep_dir)
    if manifest is not None:
        return manifest.run_dirs()
    return rundir.find_run_dirs(Path(sweep_dir)) if Path(sweep_dir).is_dir() else []


def run_dirs_below(root: Path) -> list[Path]:
    """Every run directory at or below `root` (as rundir.find_run_dirs finds them), except that
    a sweep directory with a manifest stands for its jobs only: a run directory below it that is
    not one of them is not counted."""
    root = Path(root)
    if read_manifest(root) is not None or rundir.is_run_dir(root):
        return job_dirs(root)
    found: list[Path] = []
    for folder, dirs, _ in os.walk(root):
        here = Path(folder)
        manifest = read_manifest(here) if here != root else None
        if manifest is not None or (here != root and rundir.is_run_dir(here)):
            found += manifest.run_dirs() if manifest is not None else [here]
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and d not in (rundir.OLD_TB_DIR, rundir.CHECKPOINT_DIR, "__pycache__"))
    return sorted(found)


def sweep_holding(path: Path) -> tuple[Path, str] | None:
    """The sweep directory that `path` is or lies in, with the file that marks it (a manifest,
    or Hydra's multirun.yaml in a sweep directory from before the manifest); None when none."""
    here = Path(os.path.abspath(path))
    for folder in (here, *here.parents):
        for marker in SWEEP_MARKERS:
            if os.path.lexists(folder / marker):  # a planted pipe or link marks it too
                return folder, marker
    return None
