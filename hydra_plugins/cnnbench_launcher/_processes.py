"""The parallel launcher's process handling: one forked child per job, results through pipes.

The parent starts at most `n_jobs` children, waits on their pipes and exit sentinels, and starts
the next job whenever one ends. A child that ends without sending its JobReturn (killed by a
signal, or exited with an error code) is recorded as failed in its job's metrics.json; the other
jobs are not affected. On SIGTERM or Ctrl-C the parent forwards SIGTERM to the running children,
waits for them to save and stop, marks the jobs that never started, and re-raises.

A child is forked with the stop signals blocked and unblocks them once its own handlers are in
place (`_child`), so a signal that comes at once (a Ctrl-C to the whole process group) stops
the job like any other instead of raising in multiprocessing's start-up code.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import (
    JobReturn,
    configure_log,
    filter_overrides,
    setup_globals,
)
from omegaconf import DictConfig, OmegaConf

from cnnbench.rundir import write_config_hash

from ._child import INTERRUPTED, STOP_SIGNALS, record_interrupted, run_in_child
from ._gpus import cuda_initialised, gives_its_own_gpu, pick_gpu, visible_gpus
from ._planning import earlier_return, job_return, plan_jobs
from ._stopping import failure_stops, mark_not_started

log = logging.getLogger(__name__)

# Imported once in the parent before the first fork, so that a job does not import them again
# itself: about 2.5 s a job on a 2-core CPU (9 tiny jobs, n_jobs=2: 46-54 s without, 10 s with;
# the joblib launcher took 13-22 s). Importing initialises neither CUDA nor torch's thread pools;
# forking after these imports is what torch's DataLoader workers do as well.
PRELOAD = ("cnnbench.run.lifecycle", "torch._dynamo")


@dataclass
class Job:
    idx: int
    overrides: list[str]
    config: DictConfig          # the job's own composed config (hydra.job.num set)
    dir: Path                   # the job's output directory, as run_job will make it
    digest: str                 # its identity (cnnbench.settings.identity)
    gpu: str | None = None      # its CUDA_VISIBLE_DEVICES (None: left as the sweep's)
    process: Any = None         # multiprocessing Process, once started
    conn: Connection | None = None
    result: Any = None          # the JobReturn (or INTERRUPTED) the child sent
    notes: list[str] = field(default_factory=list)


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """One JobReturn per job, in order: the jobs that run (see `_planning`) and the others."""
    setup_globals()
    assert launcher.config is not None and launcher.hydra_context is not None
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    n_jobs = launcher.n_jobs if launcher.n_jobs > 0 else (os.cpu_count() or 1)
    log.info(f"Launching {len(job_overrides)} jobs, {n_jobs} at a time, each in its own "
             f"process; sweep output dir: {sweep_dir}")
    planned = plan_jobs(launcher, job_overrides)
    jobs = {id(p): Job(p.idx, p.overrides, p.config, p.dir, p.digest) for p in planned if p.runs}
    if launcher.stopped_by is None:
        run_all(launcher, list(jobs.values()), n_jobs)
    else:  # an earlier batch of the sweep failed, and fail_fast stopped it
        for job in jobs.values():
            mark_not_started(job, launcher.stopped_by)
    results = []
    for p in planned:
        job = jobs.get(id(p))
        if job is None:
            results.append(earlier_return(p))
        else:
            results.append(job.result if isinstance(job.result, JobReturn) else
                           job_return(job, None))
    return results


def run_all(launcher, jobs: list[Job], n_jobs: int) -> None:
    """Run every job, at most `n_jobs` at once; on SIGTERM/Ctrl-C stop them all and re-raise."""
    context = multiprocessing.get_context("fork")  # the task function needs no pickling
    for module in PRELOAD:
        importlib.import_module(module)
    gpus = visible_gpus()
    if gpus:
        log.info(f"jobs spread over {len(gpus)} GPU{'s' if len(gpus) > 1 else ''}, one each "
                 f"(CUDA_VISIBLE_DEVICES={','.join(gpus)})")
        if cuda_initialised():
            log.warning("CUDA was initialised in the sweep's process before it forked its "
                        "jobs: jobs that use CUDA will fail")
    pending, running = deque(jobs), []
    try:
        while pending or running:
            while pending and len(running) < n_jobs:
                job = pending.popleft()
                if not gives_its_own_gpu(OmegaConf.select(job.config, "trainer.device")):
                    job.gpu = pick_gpu(gpus, [other.gpu for other in running])
                running.append(job)
                start(context, launcher, job)
            ended = wait_for_any(running)
            for job in ended:
                running.remove(job)
                finish(job)
            failure = next(filter(None, (failure_stops(launcher, job) for job in ended)), None)
            if failure is not None:  # fail_fast: the others are stopped, or never start
                stop(running, launcher.stop_timeout_s, failure)
                for job in pending:
                    mark_not_started(job, failure)
                return
    except KeyboardInterrupt as err:
        reason = str(err) or "stopped by the user (Ctrl-C)"
        log.warning(f"sweep stopped ({reason}): stopping {len(running)} running jobs; "
                    f"{len(pending)} jobs will not start")
        stop(running, launcher.stop_timeout_s, reason)
        for job in pending:
            mark_not_started(job, reason)
        raise


def start(context, launcher, job: Job) -> None:
    write_config_hash(job.dir, job.digest)  # its identity, before anything can go wrong
    reader, writer = context.Pipe(duplex=False)
    job.conn = reader
    job.process = context.Process(target=run_in_child, args=(writer, launcher, job),
                                  name=f"cnnbench-job-{job.idx}")
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the child inherits it
    try:
        job.process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # one held meanwhile comes now
    writer.close()  # the child holds the only writing end: its exit closes the pipe


def wait_for_any(running: list[Job], timeout: float | None = None) -> list[Job]:
    """Wait until a child sends its result or exits; return the jobs whose process ended."""
    conns = [job.conn for job in running if job.conn is not None]
    ready = wait([*conns, *(job.process.sentinel for job in running)], timeout)
    for job in running:
        if job.conn is not None and job.conn in ready:
            receive(job)
    return [job for job in running if job.process.sentinel in ready]


def receive(job: Job) -> None:
    try:
        while job.conn is not None and job.conn.poll():
            job.result = job.conn.recv()
    except (EOFError, OSError):
        job.conn.close()
        job.conn = None


def finish(job: Job) -> None:
    """The job's process has ended: take its result, or record why it has none."""
    job.process.join()
    receive(job)
    if job.conn is not None:
        job.conn.close()
        job.conn = None
    if isinstance(job.result, JobReturn):
        return
    if job.result == INTERRUPTED:  # its own SIGTERM or Ctrl-C: it saved and said so
        log.warning(f"job #{job.idx} was interrupted (see its metrics.json); the other jobs go on.")
        return
    reason = death_reason(job.process.exitcode)
    from cnnbench.endings import exit_code_of_process
    from cnnbench.rundir import FAILED, record_outcome

    record_outcome(job.dir, FAILED, reason,
                   {"exit_code": exit_code_of_process(job.process.exitcode)})
    log.error(f"job #{job.idx} ({' '.join(filter_overrides(job.overrides))}) failed: {reason}. "
              f"The other jobs go on.")


def death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown signal"
        oom = "; the out-of-memory killer sends this" if -exitcode == signal.SIGKILL else ""
        return f"killed by signal {-exitcode} ({name}{oom})"
    if exitcode:
        return f"its process exited with code {exitcode} before reporting a result"
    return "its process ended without reporting a result"


def stop(running: list[Job], timeout_s: float, reason: str) -> None:
    """SIGTERM to every running job, then wait (up to `timeout_s`) while they save and stop. A
    second SIGTERM or Ctrl-C, or the timeout, ends the wait with SIGKILL."""
    again: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: again.append(signum))
                for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        started = [job for job in running if job.process is not None and job.process.pid]
        for job in started:
            send_signal(job, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while alive := [job for job in started if job.process.is_alive()]:
            if again or time.monotonic() > deadline:
                why = "asked twice" if again else f"not stopped {timeout_s:g}s after SIGTERM"
                for job in alive:
                    job.notes.append(f"killed with SIGKILL ({why})")
                    send_signal(job, signal.SIGKILL)
                break
            wait_for_any(alive, timeout=0.5)
        for job in started:
            job.process.join()
            receive(job)
            if job.result is None:  # it ended before it could say so itself
                record_interrupted(job.dir, "; ".join([reason, *job.notes]))
        for job in running:
            if job not in started:
                mark_not_started(job, reason)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def send_signal(job: Job, signum: int) -> None:
    try:
        os.kill(job.process.pid, signum)
    except ProcessLookupError:
        pass
