"""Running a sweep again in its directory: what becomes of each job, decided from the files its
earlier attempt left there, found by the job's identity (settings.identity) among the jobs of
the sweep's manifest (sweep.manifest), not by its number nor by what its directory says of it
(a job resumed by hand with more epochs is still that job).

- completed, or pruned (a search's pruner stopped it on purpose): skipped, its directory left
  as it is;
- interrupted, failed, or crashed (its process died without a final status), with a last.pt that
  holds at least one finished epoch: resumed from it, in its directory. A resume is exact (the
  checkpoint is the snapshot of a finished epoch, RNG and loader state included), so this ends as
  a full run would, minus the epochs already done; a job that failed for good fails again either
  way, only sooner;
- diverged, or with no finished epoch to resume from: run again from the start in its directory,
  the earlier attempt's files moved to <job>/.earlier/<n>/ (a diverged run's last.pt is the
  snapshot just before it blew up: resuming from it would only replay the divergence);
- not started: run, in the directory the sweep had made (or planned) for it;
- being written by a live process (a resume started by hand): left alone;
- no earlier attempt: a new job, numbered after the jobs already in the sweep directory.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnnbench import rundir
from cnnbench.settings.identity import run_config_hash
from cnnbench.sweep.manifest import (
    Job,
    Manifest,
    latest_outcome,
    read_manifest,
    write_manifest,
)

SKIP, RESUME, RESTART, NEW, BUSY = "skip", "resume", "restart", "new", "busy"
CRASHED = "crashed"  # an earlier attempt whose process died before it could write a final status


@dataclass(frozen=True)
class Decision:
    action: str
    run_dir: Path | None = None   # the directory of the job's earlier attempt (None: new)
    earlier: str | None = None    # how that attempt ended


def decide(run_dir: Path) -> Decision:
    """What to do with a job whose earlier attempt is in `run_dir` (see the module's docstring)."""
    if not run_dir.is_dir():  # planned, but the sweep stopped before it made the directory
        return Decision(RESTART, run_dir, rundir.NOT_STARTED)
    metrics, status, _ = rundir.load_metrics(run_dir)
    if status in (rundir.COMPLETED, rundir.PRUNED):  # a pruned trial is done, not failed
        return Decision(SKIP, run_dir, status)
    if rundir.RunLock(run_dir).owner() is not None:
        return Decision(BUSY, run_dir, status)
    earlier = status if status in rundir.FINAL_STATUSES else CRASHED
    epochs = metrics.get("epochs_run")
    resumable = (earlier not in (rundir.DIVERGED, rundir.NOT_STARTED)
                 and rundir.last_checkpoint(run_dir).is_file()
                 and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1)
    return Decision(RESUME if resumable else RESTART, run_dir, earlier)


def job_number(name: str) -> int | None:
    """The number a job directory's name starts with (`3_model=mlp` -> 3)."""
    match = re.match(r"(\d+)(_|$)", name)
    return int(match.group(1)) if match else None


def absolute(path: Path | str) -> Path:
    return Path(os.path.abspath(path))


def check_job_dir(sweep_dir: Path, job_dir: Path, claimed: set[Path]) -> None:
    """A job's directory lies inside its sweep's directory, and neither inside nor around
    another job's (a sweep holds its own jobs only; runs hold no nested runs), whatever a
    hydra.sweep.subdir pattern, an override value with '/' in it or a manifest on disk says."""
    from cnnbench.errors import UserError

    sweep, where = absolute(sweep_dir), absolute(job_dir)
    if sweep not in where.parents:
        raise UserError(
            f"A job of this sweep would be written to {where}, which is not inside the sweep "
            f"directory {sweep}: the sweep's outcome, `cnnbench compare {sweep}` and the "
            f"sweep run again would not find it. Give hydra.sweep.subdir a relative pattern "
            f"without '..', e.g. hydra.sweep.subdir=${{hydra.job.num}}, or leave it out.")
    outer = rundir.enclosing_run(where)
    nested = next((d for d in claimed if d != where and (d in where.parents or where in d.parents)),
                  outer if outer is not None and sweep in outer.parents else None)
    if nested is not None:
        raise UserError(
            f"Two jobs of this sweep would be written one inside the other ({nested} and "
            f"{where}), and runs hold no nested runs: `cnnbench compare` and the sweep run "
            f"again would read them as one. Give hydra.sweep.subdir a pattern that makes a "
            f"folder of its own for each job, e.g. hydra.sweep.subdir=${{hydra.job.num}}, or "
            f"leave it out.")


def found_jobs(sweep_dir: Path) -> Manifest:
    """A manifest for a sweep directory that has none (made before it): every run directory
    below it that has an identity, as the jobs of a plan 0. The directory itself is never one
    of its jobs, even when a single run was written into it."""
    manifest = Manifest(sweep_dir)
    if not sweep_dir.is_dir():
        return manifest
    folders = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name not in (rundir.CHECKPOINT_DIR, rundir.OLD_TB_DIR))
    for run in (run for folder in folders for run in rundir.find_run_dirs(folder)):
        digest = run_config_hash(run)
        if digest is not None:
            status, reason = latest_outcome(run)
            manifest.jobs.append(Job(digest, os.path.relpath(run, sweep_dir),
                                     stored_overrides(run), 0, status=status, reason=reason))
    return manifest


def stored_overrides(run: Path) -> list[str]:
    """The overrides Hydra stored for a run ([] when they cannot be read), read as stored text
    (a regular file of bounded size, plain YAML of bounded depth)."""
    from cnnbench.rundir.stored_text import read_stored_yaml

    try:
        overrides = read_stored_yaml(run / rundir.HYDRA_DIR / "overrides.yaml")
    except (OSError, ValueError):  # StoredTextError is a ValueError
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


@dataclass
class SweepBook:
    """One run of a sweep over a directory: its plan in the sweep's manifest, which job
    directories its jobs took, and the next free job number."""

    sweep_dir: Path
    claimed: set[Path] = field(default_factory=set)
    next_free: int | None = None
    manifest: Manifest | None = None
    search: bool = False  # the jobs are a search's trials (see Manifest.search)

    def open(self) -> Manifest:
        """The sweep's manifest with this run's plan begun (the first time: read, or made from
        the job directories found, and its plan number one higher)."""
        if self.manifest is None:
            self.manifest = read_manifest(self.sweep_dir) or found_jobs(self.sweep_dir)
            self.manifest.plan += 1
            self.manifest.pid = os.getpid()
            self.manifest.stopped_by = None
            self.manifest.search = self.manifest.search or self.search
        return self.manifest

    def place(self, digests: list[str]) -> list[Decision]:
        """A decision for each job (identified by its config hash), in order, from the jobs the
        manifest holds; two jobs with one identity (a list that repeats a value) take two
        directories."""
        manifest = self.open()
        existing: dict[str, list[Path]] = {}
        for job in manifest.jobs:
            existing.setdefault(job.digest, []).append(absolute(manifest.path_of(job)))
        if self.next_free is None:
            numbers = [job_number(Path(job.dir).name) for job in manifest.jobs]
            self.next_free = max([n for n in numbers if n is not None]
                                 + [len(manifest.jobs) - 1]) + 1
        decisions = []
        for digest in digests:
            free = [d for d in existing.get(digest, []) if d not in self.claimed]
            decisions.append(decide(free[0]) if free else Decision(NEW))
            self.claimed.update(free[:1])
        return decisions

    def take_number(self) -> int:
        assert self.next_free is not None, "place() first"
        self.next_free += 1
        return self.next_free - 1

    def note(self, decision: Decision, job_dir: Path, digest: str, overrides: list[str]) -> None:
        """The job is part of this run's plan, in `job_dir` (saved with `save`)."""
        manifest = self.open()
        self.claimed.add(absolute(job_dir))
        job = manifest.find(job_dir)
        if job is None:
            job = Job(digest, os.path.relpath(job_dir, self.sweep_dir), overrides, manifest.plan)
            manifest.jobs.append(job)
        job.digest, job.overrides, job.plan = digest, list(overrides), manifest.plan
        job.action, job.earlier = decision.action, decision.earlier
        job.status, job.reason = latest_outcome(job_dir)

    def stopped_at(self, job_dir: Path) -> None:
        """The ending of the job in `job_dir` stopped this plan (saved with `save`)."""
        self.open().stopped_by = os.path.relpath(job_dir, self.sweep_dir)

    def save(self, refresh: bool = False) -> None:
        """Write the manifest; with `refresh`, each job of this plan's latest outcome first."""
        manifest = self.open()
        if refresh:
            for job in manifest.current():
                job.status, job.reason = latest_outcome(manifest.path_of(job))
        write_manifest(manifest)


def this_run(sweep_dir: Path) -> list[dict]:
    """What this process's run of the sweep did with each job ([] when it planned none)."""
    manifest = read_manifest(sweep_dir)
    if manifest is None or manifest.pid != os.getpid():
        return []
    return [{"action": job.action, "earlier": job.earlier} for job in manifest.current()]


def _jobs(n: int) -> str:
    return f"{n} job{'s' if n != 1 else ''}"


def _why(entries: list[dict]) -> str:
    counts = Counter(str(e.get("earlier")) for e in entries)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def record_summary(jobs: list[dict]) -> str | None:
    """E.g. 'skipped 2 completed jobs; resumed 1 job from its last.pt (1 interrupted); 1 new
    job'; None when the sweep directory held no earlier attempt of any job."""
    by = {action: [j for j in jobs if j.get("action") == action]
          for action in (SKIP, RESUME, RESTART, NEW, BUSY)}
    if not jobs or len(by[NEW]) == len(jobs):
        return None
    waiting = [j for j in by[RESTART] if j.get("earlier") == rundir.NOT_STARTED]
    again = [j for j in by[RESTART] if j.get("earlier") != rundir.NOT_STARTED]
    skipped = len(by[SKIP])
    parts = [f"skipped {skipped} completed job{'s' if skipped != 1 else ''}" if skipped else "",
             f"resumed {_jobs(len(by[RESUME]))} from {'its' if len(by[RESUME]) == 1 else 'their'}"
             f" last.pt ({_why(by[RESUME])})" if by[RESUME] else "",
             f"ran {_jobs(len(again))} again from the start ({_why(again)})" if again else "",
             f"started {_jobs(len(waiting))} that had not started" if waiting else "",
             f"{len(by[NEW])} new job{'s' if len(by[NEW]) != 1 else ''}" if by[NEW] else "",
             f"left {_jobs(len(by[BUSY]))} alone (another process is writing "
             f"{'it' if len(by[BUSY]) == 1 else 'them'})" if by[BUSY] else ""]
    return "; ".join(p for p in parts if p)
