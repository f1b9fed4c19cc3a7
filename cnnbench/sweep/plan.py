"""Running a sweep again in its directory: what becomes of each job, decided from the files its
earlier attempt left there, found by the job's identity (config_identity), not by its number.

- completed: skipped, its directory left as it is;
- interrupted, failed, or crashed (its process died without a final status), with a last.pt that
  holds at least one finished epoch: resumed from it, in its directory. A resume is exact (the
  checkpoint is the snapshot of a finished epoch, RNG and loader state included), so this ends as
  a full run would, minus the epochs already done; a job that failed for good fails again either
  way, only sooner;
- diverged, or with no finished epoch to resume from: run again from the start in its directory,
  the earlier attempt's files moved to <job>/.earlier/<n>/ (a diverged run's last.pt is the
  snapshot just before it blew up: resuming from it would only replay the divergence);
- not started: run, in the directory the sweep had made for it;
- being written by a live process (a resume started by hand): left alone;
- no earlier attempt: a new job, numbered after the jobs already in the sweep directory.
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnnbench import rundir
from cnnbench.settings.identity import run_config_hash

SKIP, RESUME, RESTART, NEW, BUSY = "skip", "resume", "restart", "new", "busy"
CRASHED = "crashed"  # an earlier attempt whose process died before it could write a final status


@dataclass(frozen=True)
class Decision:
    action: str
    run_dir: Path | None = None   # the directory of the job's earlier attempt (None: new)
    earlier: str | None = None    # how that attempt ended


def decide(run_dir: Path) -> Decision:
    """What to do with a job whose earlier attempt is in `run_dir` (see the module's docstring)."""
    metrics, status, _ = rundir.load_metrics(run_dir)
    if status == rundir.COMPLETED:
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


@dataclass
class SweepBook:
    """One run of a sweep over a directory: which earlier job directories its jobs took, the next
    free job number, and what it did with each job (for the summary at the end)."""

    sweep_dir: Path
    claimed: set[Path] = field(default_factory=set)
    done: list[dict] = field(default_factory=list)
    next_free: int | None = None

    def place(self, digests: list[str]) -> list[Decision]:
        """A decision for each job (identified by its config hash), in order; two jobs with one
        identity (a list that repeats a value) take two directories."""
        existing: dict[str, list[Path]] = {}
        runs = rundir.find_run_dirs(self.sweep_dir) if self.sweep_dir.is_dir() else []
        for run in runs:
            digest = run_config_hash(run)
            if digest is not None:
                existing.setdefault(digest, []).append(absolute(run))
        if self.next_free is None:
            numbers = [job_number(run.name) for run in runs]
            self.next_free = max([n for n in numbers if n is not None] + [len(runs) - 1]) + 1
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

    def note(self, decision: Decision, job_dir: Path) -> None:
        self.claimed.add(absolute(job_dir))
        self.done.append({"action": decision.action, "earlier": decision.earlier,
                          "run_dir": str(job_dir)})
        rundir.write_json_atomic(self.sweep_dir / rundir.SWEEP_RECORD_FILE,
                                 {"pid": os.getpid(), "jobs": self.done})


def read_record(sweep_dir: Path) -> list[dict]:
    """What this process's run of the sweep did with each job ([] when it planned none)."""
    try:
        record = json.loads((Path(sweep_dir) / rundir.SWEEP_RECORD_FILE).read_text())
        return list(record["jobs"]) if record.get("pid") == os.getpid() else []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


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
