"""The one exception type for mistakes a user can fix: the CLI prints its message, not a traceback."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class RunDiverged(UserError):
    """The training loss became NaN or infinite; the message suggests the likely cause."""


class RunPruned(Exception):
    """A search's pruner stopped the run at an epoch's end: a normal outcome of a search, not a
    mistake; the message says at which epoch and with what value."""


MEMORY_WORDS = ("not enough memory", "DefaultCPUAllocator", "out of memory",
                "Cannot allocate memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether `err` says memory ran out (MemoryError, ENOMEM, torch's allocators): a fault of
    the machine's size, which the error boundary explains, never a mistake in a config."""
    if isinstance(err, MemoryError) or (isinstance(err, OSError) and err.errno == 12):
        return True
    return any(word in str(err) for word in MEMORY_WORDS)


def printable(text: str) -> str:
    """`text` safe to print and to write as UTF-8: the bytes of a file name that is not valid
    UTF-8 (which Python keeps as surrogate escapes) shown as \\xNN."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def print_user_error(console: Console, err: BaseException | str) -> None:
    """The one way a mistake is shown: `error:` and its paragraph, never a traceback; wrapped
    between words on a terminal, one line through a pipe (the reader's viewer wraps it)."""
    console.print(f"[bold red]error:[/] {escape(printable(str(err)))}", highlight=False,
                  soft_wrap=not console.is_terminal)
