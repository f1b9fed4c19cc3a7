"""The one error boundary of every subcommand: however a command ends, it ends the same way.

`run_command` runs a subcommand with the stop handlers installed (Ctrl-C, SIGTERM, SIGHUP) and
maps how it ended to what the user sees, with the status and exit code of `endings.ending_of`:

- a signal: one line, `interrupted: <why>`, exit 130 / 143 / 129;
- a mistake (UserError) or a fault of the machine (a full disk, a read-only file system, a
  path too long, memory that ran out, a file name that is not UTF-8): one paragraph, `error:`;
- anything else is a bug and keeps its traceback, as every error does with --debug.

An output nobody reads any more (`cnnbench train ... | head -3`: the reader went away, EPIPE)
ends what the command shows, not the command: `guard_output` has stdout and stderr drop what
is written from then on (their file descriptor points at /dev/null, as Python's documentation
recommends for SIGPIPE), so a run goes on training, writes every file and ends as it would have.

A record the command writes (an eval's metrics.json) is given to the boundary with `track`: when
the command does not end it, the boundary writes its final status (interrupted or failed, with
the reason), so that no record is left saying `running`.
"""
from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, Callable, TextIO

from rich.console import Console
from rich.markup import escape

from cnnbench.endings import (
    Ending,
    ending_of,
    install_stop_handlers,
    quiet_stop_signals,
)
from cnnbench.errors import UserError, print_user_error, printable
from cnnbench.faults import Hints, fault_of, shown_path
from cnnbench.rundir import FINAL_STATUSES, metrics_file


class Scope:
    """What a running command leaves behind: the records the boundary must end for it."""

    def __init__(self) -> None:
        self.records: list[Any] = []  # RunRecord

    def track(self, record: Any) -> Any:
        """`record` (a RunRecord) gets a final status however the command ends; returns it."""
        self.records.append(record)
        return record

    def end(self, ending: Ending) -> tuple[list[str], list[str]]:
        """Every tracked record not yet ended gets `ending`'s status and reason; returns the
        metrics files ended, and what could not be written."""
        ended, problems = [], []
        for record in self.records:
            file = metrics_file(record.run_dir)
            if record.metrics.get("status") in FINAL_STATUSES or not os.path.exists(file):
                continue  # ended, or never written: nothing says `running`
            path = shown_path(file)
            try:
                record.finish(ending.status, ending.reason)
                ended.append(path)
            except OSError as err:
                problems.append(f"{path} could not be updated either ({err.strerror or err}) "
                                f"and still says status: {record.metrics.get('status')}")
        return ended, problems


def run_command(action: Callable[[Scope], int], console: Console, debug: bool = False,
                hints: Hints | None = None) -> int:
    """`action(scope)`'s exit code, with every ending shown as the module says."""
    restore = install_stop_handlers()
    scope = Scope()
    try:
        return action(scope)
    except SystemExit as err:  # Hydra's own exits: records not ended are failed, not completed
        if err.code not in (0, None):
            scope.end(ending_of(err))
        raise
    except BaseException as err:  # noqa: BLE001 (the boundary: each is shown or re-raised)
        return ended(err, scope, console, debug, hints or Hints())
    finally:
        restore()


def ended(err: BaseException, scope: Scope, console: Console, debug: bool, hints: Hints) -> int:
    """Show how the command ended and end its records; the exit code. A bug is re-raised."""
    unquiet = quiet_stop_signals()  # a second Ctrl-C does not cut the ending short
    try:
        ending = ending_of(err, hints)
        ended_files, problems = scope.end(ending)
        if ending.interrupted:
            said = f"; {', '.join(ended_files)} say{'s' if len(ended_files) == 1 else ''} " \
                   f"status: interrupted" if ended_files else ""
            say(console, f"[bold yellow]interrupted:[/] {escape(printable(str(ending.reason)))}"
                         f"{escape(said)}.")
            return ending.exit_code
        shown = str(err) if isinstance(err, UserError) else \
            (fault.text if (fault := fault_of(err, hints)) else None)
        if shown is None:
            raise err
        if debug:
            traceback.print_exception(err, file=sys.stderr)
        text = " ".join([shown, *(f"({p}.)" for p in problems)])
        try:
            print_user_error(console, text)
        except OSError:  # the terminal is gone: the records say it
            pass
        return ending.exit_code
    finally:
        unquiet()


def say(console: Console, text: str) -> None:
    """Print one paragraph (wrapped between words on a terminal, one line through a pipe), even
    when the terminal is gone (SIGHUP): the records already say it."""
    try:
        console.print(text, highlight=False, soft_wrap=not console.is_terminal)
    except OSError:
        pass


def closed_output(err: BaseException) -> bool:
    """Whether `err` says the reader of an output went away (a closed pipe)."""
    return isinstance(err, BrokenPipeError) or (isinstance(err, OSError)
                                                and err.errno == errno.EPIPE)


class GuardedStream:
    """A text stream (stdout, stderr) whose closed reader silences it instead of failing the
    write: from the first EPIPE on, what is written goes to /dev/null."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.silenced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def write(self, text: str) -> int:
        if not self.silenced:
            try:
                return self.stream.write(text)
            except OSError as err:
                self.silence(err)
        return len(text)

    def flush(self) -> None:
        if not self.silenced:
            try:
                self.stream.flush()
            except OSError as err:
                self.silence(err)

    def silence(self, err: OSError) -> None:
        """After a closed pipe: the stream's descriptor points at /dev/null (so the interpreter's
        last flush, and anything writing to the descriptor, finds a reader); other errors are
        raised."""
        if not closed_output(err):
            raise err
        self.silenced = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor
            pass


def guard_output() -> Callable[[], None]:
    """stdout and stderr guarded (`GuardedStream`) from now on; returns what puts them back."""
    previous = sys.stdout, sys.stderr
    if sys.stdout is not None and not isinstance(sys.stdout, GuardedStream):
        sys.stdout = GuardedStream(sys.stdout)
    if sys.stderr is not None and not isinstance(sys.stderr, GuardedStream):
        sys.stderr = GuardedStream(sys.stderr)

    def restore() -> None:
        sys.stdout, sys.stderr = previous

    return restore
