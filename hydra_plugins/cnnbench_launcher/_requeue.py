"""A job of the submitit launchers, in its own process on the cluster: it runs where the sweep
planned it and, when the scheduler asks it to make way, saves, stops and is submitted again.

submitit calls the job's `checkpoint` when the scheduler's signal comes (SIGUSR2 before a time
limit, or at a preemption, with Slurm's --signal; submitit's local executor sends it too) and
requeues the job with what that returns. Its own handler would do so at once, from wherever the
run was, and the run, cut off, would not say how it ended. Here the signal instead stops the
run as SIGTERM does (it saves its last.pt and says `interrupted`), and only then does submitit's
handler checkpoint and requeue it. The job that starts again is the same job in the same
directory: it resumes from that last.pt (or, with no finished epoch to resume from, runs again
from the start, the earlier attempt's files set aside), as a sweep run again does.
"""
from __future__ import annotations

import contextlib
import logging
import signal
from typing import Any, Callable, Iterator

from omegaconf import DictConfig

log = logging.getLogger(__name__)


def scheduler_signal() -> int:
    """The signal by which submitit asks a job to make way (SIGUSR2 unless set otherwise)."""
    from submitit import JobEnvironment

    return int(JobEnvironment._usr_sig())


@contextlib.contextmanager
def stop_on_requeue_signal() -> Iterator[Callable[[int], None]]:
    """While the job runs, the scheduler's signal stops the run (`cnnbench.endings.Requeued`);
    yields what hands the stop to submitit's own handler, which checkpoints and requeues the
    job (and exits the process)."""
    from cnnbench.endings import Requeued, let_pass

    signum = scheduler_signal()
    submitits = signal.getsignal(signum)

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signum, let_pass)  # a second one does not cut the saving short
        raise Requeued(signum)

    def requeue(signum: int) -> None:
        if callable(submitits):
            submitits(signum, None)
        raise SystemExit(f"stopped by {signal.Signals(signum).name}, and not requeued")

    signal.signal(signum, stop)
    try:
        yield requeue
    finally:
        signal.signal(signum, submitits)


def resume_where_it_was(config: DictConfig, attempt: int) -> Any:
    """A job that starts again (its `attempt` after the first: requeued) in the directory its
    earlier attempt used: pointed at that attempt's last.pt, or ready to run again from the
    start. Returns the earlier result of a job that completed already (its JobReturn), else
    None. A lock its earlier attempt left (killed on another node before it could remove it) is
    taken over: the scheduler starts a job again only once its earlier run has ended."""
    from cnnbench import rundir
    from cnnbench.sweep.plan import BUSY, SKIP, decide

    from ._planning import PlannedJob, earlier_return, job_dir, prepare

    directory = job_dir(config)
    if attempt <= 1 or not rundir.is_run_dir(directory):
        return None
    decision = decide(directory)
    if decision.action == BUSY:
        (directory / rundir.LOCK_FILE).unlink(missing_ok=True)
        decision = decide(directory)
    log.info(f"job {directory.name}, attempt {attempt}: {decision.action} ({decision.earlier})")
    if decision.action == SKIP:
        return earlier_return(PlannedJob(int(config.hydra.job.num), list(
            config.hydra.overrides.task), config, directory, "", SKIP))
    prepare(config, directory, decision)
    return None
