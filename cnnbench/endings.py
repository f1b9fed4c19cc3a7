"""How a cnnbench process can end, and the one table that maps each way to a status and exit code.

Signals that stop a run (SIGTERM from `kill` or a scheduler, SIGHUP when the terminal closes)
are raised as `Stopped`, a KeyboardInterrupt like Ctrl-C, so every ending unwinds through the
same code: the run saves what it has, `ending_of` names the status, the command exits with the
code a shell expects (128 + signal number for a signal). A fault of the machine (a full disk, a
read-only file system, memory that ran out: `cnnbench.faults`) ends `failed` with its paragraph
as the reason. A search's trial that its pruner stopped ends `pruned` with exit code 0: stopping
a hopeless trial early is what the search asked for.

A sweep's job records its ending's exit code with its final status (`exit_code` in its
metrics.json; a job process that died: 128 + the signal that killed it, as a shell says), and
a sweep ends as the job that ended it would have ended alone (`sweep_exit_code`).
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from cnnbench.errors import RunDiverged, RunPruned, UserError
from cnnbench.faults import Hints, fault_of
from cnnbench.rundir import COMPLETED, DIVERGED, FAILED, INTERRUPTED, PRUNED

STOP_SIGNALS = {"SIGTERM": "stopped by SIGTERM (kill, or a job scheduler)",
                "SIGHUP": "stopped by SIGHUP (the terminal was closed)"}


class Stopped(KeyboardInterrupt):
    """A signal that stops the run, handled like Ctrl-C: the run saves what it has and stops."""

    def __init__(self, signum: int, where: str | None = None) -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        said = STOP_SIGNALS.get(name, f"stopped by {name}")
        super().__init__(f"{said} {where}" if where else said)


class Requeued(Stopped):
    """The cluster's scheduler asks a sweep job to make way (it is preempted, or its time limit
    is near: Slurm's --signal, SIGUSR2 from submitit): the run saves and stops like for SIGTERM,
    and its launcher submits it again, to resume from its last.pt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum, "(the cluster preempted the job, or its time limit is near): "
                                 "requeued, to resume from its last.pt")


@dataclass(frozen=True)
class Ending:
    status: str
    exit_code: int
    reason: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.status == INTERRUPTED


def ending_of(err: BaseException | None, hints: Hints | None = None) -> Ending:
    """The final status and exit code of a process that ended with `err` (None: it completed);
    `hints` say what the command's user can change, for the paragraph of a fault."""
    if err is None:
        return Ending(COMPLETED, 0)
    if isinstance(err, Stopped):
        return Ending(INTERRUPTED, 128 + err.signum, str(err))
    if isinstance(err, KeyboardInterrupt):
        return Ending(INTERRUPTED, 130, "stopped by the user (Ctrl-C)")
    if isinstance(err, RunDiverged):
        return Ending(DIVERGED, 1, str(err))
    if isinstance(err, RunPruned):  # a search stopped a hopeless trial: it did what was asked
        return Ending(PRUNED, 0, str(err))
    if isinstance(err, UserError):
        return Ending(FAILED, 2, str(err))
    if isinstance(err, SystemExit):
        code = err.code if isinstance(err.code, int) else 1
        return Ending(COMPLETED if code == 0 else FAILED, code, f"exited with code {code}")
    fault = fault_of(err, hints)
    if fault is not None:
        return Ending(FAILED, fault.exit_code, fault.text)
    return Ending(FAILED, 1, f"{type(err).__name__}: {err}")


def exit_code_of_process(exitcode: int | None) -> int:
    """The exit code a shell shows for a process that ended with multiprocessing's `exitcode`
    (minus the signal that killed it): 128 + that signal (137 for SIGKILL, which the
    out-of-memory killer sends); a process that ended without one, 1."""
    if exitcode is not None and exitcode < 0:
        return 128 - exitcode
    return exitcode or 1


def recorded_exit_code(status: str, recorded: object) -> int:
    """The exit code of a run that ended with `status`, as its metrics.json records it (written
    with its final status); for a record without one, that of the status: 0 for a run that
    completed or was pruned, 1 otherwise."""
    if isinstance(recorded, int) and not isinstance(recorded, bool) and 0 <= recorded <= 255:
        return recorded
    return 0 if status in (COMPLETED, PRUNED) else 1


def sweep_exit_code(statuses: Iterable[str], stopped_by: int | None = None) -> int:
    """A sweep's exit code, from its jobs' statuses: when a job's ending stopped the sweep
    (hydra.launcher.fail_fast=true stops it at its first failed job), that job's exit code, as
    if it had run alone (2 for a mistake, 1 for a crash, 137 for a job killed with SIGKILL);
    else 0 when every job completed (or was pruned), and 1 when any did not: a sweep that ran
    to its end has no one ending, its jobs may each have ended their own way. (A sweep stopped
    by a signal ends as that signal says, as any command does: `ending_of`.)"""
    if stopped_by:  # (a job's ending that stops a sweep is never a success)
        return stopped_by
    done = (COMPLETED, PRUNED)
    return 0 if all(status in done for status in statuses) else 1


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


def _stop_signals() -> list[int]:
    return [s for s in (getattr(signal, name, None) for name in ("SIGINT", *STOP_SIGNALS))
            if s is not None]


def _set_handlers(handler_of: Callable[[int], Callable]) -> Callable[[], None]:
    """Each stop signal's handler set to `handler_of(signum)`, except one the parent set to be
    ignored (nohup, a background job): it stays ignored. Returns what puts back the previous."""
    previous = {}
    for signum in _stop_signals():
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler_of(signum))

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def install_stop_handlers() -> Callable[[], None]:
    """Ctrl-C raises KeyboardInterrupt and SIGTERM and SIGHUP raise `Stopped` from now on;
    returns a function that puts back what was there."""
    return _set_handlers(lambda signum: signal.default_int_handler if signum == signal.SIGINT
                         else _raise_stopped)


def hold_stop_signals(on_signal: Callable[[int], None]) -> Callable[[], None]:
    """Stop signals (Ctrl-C included) call `on_signal(signum)` from now on instead of stopping
    the process where it is: for processes that must stop together, at a point they agree on
    (`engine.stops`). Returns a function that puts back what was there."""
    return _set_handlers(lambda signum: lambda got, frame: on_signal(got))


def let_pass(signum: int, frame: Any) -> None:
    """A stop signal that comes while a process already stops: nothing more to do."""


def quiet_stop_signals() -> Callable[[], None]:
    """Stop signals do nothing from now on (a process that is saving and stopping is not cut
    short by a second one); returns a function that puts back what was there.

    A Python handler that does nothing, not SIG_IGN: a signal that arrived just before (held by
    the interpreter until its next instruction) would otherwise find no handler and be printed
    as "OSError: Signal 15 ignored due to race condition"."""
    return _set_handlers(lambda signum: let_pass)
