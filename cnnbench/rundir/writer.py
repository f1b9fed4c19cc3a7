"""The one writer of the files cnnbench writes (TensorBoard's event files, which the library
writes, and Hydra's own files aside).

Every file is checked against its `Writer` (`cnnbench.rundir.policy`: where it may go and what
it may replace), then written atomically beside its target and renamed over it (a reader never
sees half a file, a link planted at its name is replaced rather than written through), with the
mode the umask gives, as every other file the process opens. A file written without a `Writer`
is a file of the run directory it is in, written by the process that owns that run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cnnbench.errors import UserError
from cnnbench.rundir.files import append, replace_with, write_all
from cnnbench.rundir.policy import Writer
from cnnbench.rundir.strict_json import strict


def _checked(path: Path, by: Writer | None) -> Writer:
    writer = by if by is not None else Writer.run(Path(path).parent)
    writer.check(Path(path))
    return writer


def write_bytes(path: Path, data: bytes | bytearray | memoryview, by: Writer | None = None,
                durable: bool = False) -> Path:
    """`data` as the file at `path`; `durable`: on the disk before it replaces the old file."""
    path = Path(path)
    writer = _checked(path, by)
    replace_with(path, lambda fd, tmp: write_all(fd, data), durable)
    writer.wrote(path)
    return path


def write_text(path: Path, text: str, by: Writer | None = None) -> Path:
    return write_bytes(path, text.encode("utf-8"), by)


def write_json_atomic(path: Path, data: Mapping[str, Any], by: Writer | None = None) -> None:
    """Write JSON to a temporary file beside `path`, then rename: readers never see half a file."""
    text = json.dumps(strict(data), indent=2, sort_keys=False, default=str, allow_nan=False)
    write_text(Path(path), text + "\n", by)


def write_with(path: Path, fill: Callable[[Path], Any], by: Writer | None = None,
               durable: bool = False) -> Path:
    """The file a library writes by name (a CSV writer, OmegaConf.save, torch.save): `fill`
    writes the temporary file whose path it is given, which then replaces `path`."""
    path = Path(path)
    writer = _checked(path, by)
    replace_with(path, lambda fd, tmp: fill(tmp), durable)
    writer.wrote(path)
    return path


def append_text(path: Path, text: str, by: Writer | None = None) -> Path:
    """`text` added at the end of `path` (a run's history.csv grows a row per epoch)."""
    path = Path(path)
    writer = by if by is not None else Writer.run(path.parent)
    if not writer.has_written(path):
        writer.check(path)
    append(path, text.encode("utf-8"))
    writer.wrote(path)
    return path


def claim_outputs(folder: Path, command: str, names: Sequence[str],
                  earlier: Callable[[Path], bool]) -> Writer:
    """The writer of a command's out= folder, with every file it will write there checked now,
    before the first is written: all of them are written, or none. An existing file of one of
    `names` is replaced only where `earlier(folder)` recognises the folder as an earlier output
    of the same command."""
    folder = Path(folder)
    require_folder(folder, command)
    refuse_links_out_of_a_run(folder, command)
    writer = Writer(command, (folder,), names if folder.is_dir() and earlier(folder) else ())
    for name in names:
        writer.check(folder / name)
    return writer


def require_folder(folder: Path, command: str) -> None:
    """Refuse, before any work, an out= path that is (or lies under) something not a folder."""
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            if place.is_dir():
                return
            raise UserError(f"{place} is a file, not a folder, so cnnbench {command} cannot "
                            f"write its files into {folder}. Give out= a folder's path (a "
                            f"missing folder is made), or leave out= off.")


def refuse_links_out_of_a_run(folder: Path, command: str) -> None:
    """Refuse a folder reached through a symbolic link inside a run directory (`<run>/export`
    -> elsewhere): cnnbench never makes one, and the command would write through it into a
    folder outside the run."""
    from cnnbench.rundir.layout import is_run_dir

    for place in (folder, *folder.parents):
        if os.path.islink(place) and is_run_dir(place.parent):
            raise UserError(
                f"{place} is a symbolic link (to {os.readlink(place)}) inside the run directory "
                f"{place.parent}, and cnnbench {command} would write its files through it, "
                f"outside the run. cnnbench never makes such links, so the run directory was "
                f"changed or comes from elsewhere: remove the link, or give out= another "
                f"folder.")


def begins_with(path: Path, prefix: bytes) -> bool:
    """Whether `path` is a plain file (not a link) whose content begins with `prefix`."""
    try:
        if not Path(path).is_file() or Path(path).is_symlink():
            return False
        with open(path, "rb") as f:
            return f.read(len(prefix)) == prefix
    except OSError:
        return False
