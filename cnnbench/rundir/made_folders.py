"""The folders a command makes on the way to the one it writes, and their removal where the
command left them empty: a refused command leaves no empty outputs/runs/ behind, and a folder
that existed before the command is never removed."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def topmost_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None: all exist)."""
    missing = [place for place in (folder, *folder.parents) if not os.path.lexists(place)]
    return missing[-1] if missing else None


def remove_empty(folder: Path, top: Path | None) -> None:
    """Remove `folder` and its parents up to `top` (`topmost_missing` before the command made
    them), each only while it is empty; nothing when `top` is None."""
    if top is None:
        return
    place = folder
    while place.is_relative_to(top):
        try:
            place.rmdir()
        except FileNotFoundError:
            pass  # removed already (as a refused run's own folder is)
        except OSError:
            return  # not empty, or not ours to remove
        place = place.parent


@contextlib.contextmanager
def made_folders(folder: Path) -> Iterator[None]:
    """Around a command that may make `folder` (and its parents): those it made and left empty
    are removed when it ends, however it ends."""
    top = topmost_missing(folder)
    try:
        yield
    finally:
        remove_empty(folder, top)
