"""A job of the parallel launcher, in its own forked process: it runs as Hydra's launchers run
a job and sends its JobReturn back through a pipe.

Its stop signals were blocked when it was forked (see `_processes.start`): its own handlers come
first, then the signals are unblocked, so that a signal sent at once (a Ctrl-C to the whole
process group) stops the job like any later one. The first SIGTERM, SIGINT or SIGHUP stops the
job (it saves and says `interrupted`); later ones do nothing.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from hydra.core.utils import run_job

from ._gpus import use_gpu

INTERRUPTED = "interrupted"  # what a child sends instead of a JobReturn when it was stopped
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def run_in_child(conn: Connection, launcher, job) -> None:
    """The job, in its own process: run it as Hydra's launchers do, send back its JobReturn."""
    from cnnbench.endings import ending_of

    use_gpu(job.gpu)  # before anything in this process can touch CUDA
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop_once)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since the fork
        stop_with_parent(os.getppid())
        result = run_job(hydra_context=launcher.hydra_context,
                         task_function=launcher.task_function, config=job.config,
                         job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except KeyboardInterrupt as err:
        ignore_stop_signals()
        ending = ending_of(err)
        record_interrupted(job.dir, str(err) or "stopped by the user (Ctrl-C)",
                           ending.exit_code)
        with contextlib.suppress(BrokenPipeError):  # the sweep's process may be gone
            conn.send(INTERRUPTED)
        sys.exit(ending.exit_code)
    ignore_stop_signals()
    try:
        conn.send(result)
    except BrokenPipeError:  # the sweep's process is gone: the job's files say how it ended
        return
    except Exception as err:  # noqa: BLE001 (e.g. an exception that cannot be pickled)
        result._return_value = RuntimeError(f"{type(result._return_value).__name__}: "
                                            f"{result._return_value} (not picklable: {err})")
        conn.send(result)


def stop_with_parent(parent: int) -> None:
    """Should the sweep's process die without stopping its jobs (SIGKILL), they get SIGTERM and
    stop cleanly rather than run on unwatched (Linux: PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def stop_once(signum: int, frame) -> None:
    """The first SIGTERM or Ctrl-C stops the job (it saves and says `interrupted`); later ones,
    e.g. the parent forwarding SIGTERM after a Ctrl-C that reached the whole process group, must
    not interrupt that saving, nor be reported as a race (see `ignore_stop_signals`)."""
    from cnnbench.endings import Stopped

    ignore_stop_signals()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt("stopped by the user (Ctrl-C)")
    raise Stopped(signum)


def ignore_stop_signals() -> None:
    """Stop signals do nothing from now on. Not SIG_IGN: a Ctrl-C and the parent's SIGTERM often
    arrive together while a torch operation holds the interpreter; when the first one's handler
    then set SIG_IGN, Python found the second one pending with no handler and printed "OSError:
    Signal 15 ignored due to race condition". A handler that does nothing takes it quietly."""
    from cnnbench.endings import quiet_stop_signals

    quiet_stop_signals()


def record_interrupted(job_dir: Path, reason: str, exit_code: int | None = None) -> None:
    """The job's metrics.json says `interrupted` (unless it already says how it ended), with
    the exit code of its ending when it is known."""
    from cnnbench.rundir import record_outcome

    record_outcome(job_dir, INTERRUPTED, reason,
                   {"exit_code": exit_code} if exit_code is not None else None)
