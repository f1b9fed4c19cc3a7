"""The one exception type for mistakes a user can fix: the CLI prints its message, not a traceback."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class RunDiverged(UserError):
    """The training loss became NaN or infinite; the message suggests the likely cause."""


def print_user_error(console: Console, err: BaseException | str) -> None:
    """The one way a mistake is shown: `error:` and its paragraph, never a traceback."""
    console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
