"""Sentences printed under compare's tables: wrapped at the terminal's width whether or not
the output is piped, and a word on colours only where colours are shown."""
from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text


def wrapped(text: str, style: str | None = None) -> Group:
    """Text that wraps at the console's width, at spaces, even where the console itself does
    not wrap (piped output). Only a word longer than the whole width is broken. (In a Group:
    console.print joins bare Text objects into one, which would lose their wrapping.)"""
    return Group(Text(text, style=style or "", no_wrap=False, overflow="fold"))


class ColourNote:
    """A sentence about the table's colours, printed only by a console that shows them (a
    terminal without NO_COLOR): piped text has no colour to speak of."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if console.color_system is not None and not console.no_color:
            yield wrapped(self.text)

