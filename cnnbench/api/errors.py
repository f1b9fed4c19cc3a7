"""How a call from Python ends when it cannot do what it was asked: an exception that carries
the paragraph the command line prints, never an exit."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

from cnnbench.errors import UserError
from cnnbench.faults import Hints, fault_of


class CnnbenchError(UserError):
    """A mistake (a misspelt option, a folder that cannot be written) or a fault of the machine
    (a full disk, memory that ran out): its message is the paragraph `cnnbench` prints."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or the notebook's interrupt) stopped a run: it is `interrupted` and resumable
    from its last.pt with `cnnbench.train(trainer={"resume": err.run.dir})`. `run` is that run
    (None when none had started)."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run


@contextlib.contextmanager
def library_errors(hints: Hints | None = None) -> Iterator[None]:
    """A mistake or a fault inside raises CnnbenchError with the command line's paragraph; an
    exit (SystemExit) is a CnnbenchError too; anything else (a bug) keeps its traceback."""
    try:
        yield
    except CnnbenchError:
        raise
    except UserError as err:
        raise CnnbenchError(str(err)) from None
    except SystemExit as err:
        raise CnnbenchError(f"the command ended with exit code {err.code}: {err}") from None
    except Exception as err:
        fault = fault_of(err, hints)
        if fault is None:
            raise
        raise CnnbenchError(fault.text) from err
