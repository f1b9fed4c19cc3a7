"""How a cnnbench process can end, and the one table that maps each way to a status and exit code.

Signals that stop a run (SIGTERM from `kill` or a scheduler, SIGHUP when the terminal closes)
are raised as `Stopped`, a KeyboardInterrupt like Ctrl-C, so every ending unwinds through the
same code: the run saves what it has, `ending_of` names the status, the command exits with the
code a shell expects (128 + signal number for a signal).
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Callable

from cnnbench.errors import RunDiverged, UserError
from cnnbench.rundir import COMPLETED, DIVERGED, FAILED, INTERRUPTED

STOP_SIGNALS = {"SIGTERM": "stopped by SIGTERM (kill, or a job scheduler)",
                "SIGHUP": "stopped by SIGHUP (the terminal was closed)"}


class Stopped(KeyboardInterrupt):
    """A signal that stops the run, handled like Ctrl-C: the run saves what it has and stops."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(STOP_SIGNALS.get(name, f"stopped by {name}"))


@dataclass(frozen=True)
class Ending:
    status: str
    exit_code: int
    reason: str | None = None

    @property
    def interrupted(self) -> bool:
        return self.status == INTERRUPTED


def ending_of(err: BaseException | None) -> Ending:
    """The final status and exit code of a process that ended with `err` (None: it completed)."""
    if err is None:
        return Ending(COMPLETED, 0)
    if isinstance(err, Stopped):
        return Ending(INTERRUPTED, 128 + err.signum, str(err))
    if isinstance(err, KeyboardInterrupt):
        return Ending(INTERRUPTED, 130, "stopped by the user (Ctrl-C)")
    if isinstance(err, RunDiverged):
        return Ending(DIVERGED, 1, str(err))
    if isinstance(err, UserError):
        return Ending(FAILED, 2, str(err))
    if isinstance(err, SystemExit):
        code = err.code if isinstance(err.code, int) else 1
        return Ending(COMPLETED if code == 0 else FAILED, code, f"exited with code {code}")
    return Ending(FAILED, 1, f"{type(err).__name__}: {err}")


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


def install_stop_handlers() -> Callable[[], None]:
    """SIGTERM and SIGHUP raise `Stopped` from now on; returns a function that puts back what was
    there. A signal the parent set to be ignored (nohup) stays ignored."""
    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, _raise_stopped)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
