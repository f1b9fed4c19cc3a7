"""How a file reaches the disk, whoever writes it: whole or not at all, with the mode the umask
gives (as `open()` gives: 0o666 less the umask), never through a link planted at its name.

These are the mechanics only; `cnnbench.rundir.writer` decides whether a file may be written.
"""
from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import Callable

# link() is not offered everywhere (FAT, some network and FUSE filesystems)
NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def new_temp(path: Path) -> tuple[int, Path]:
    """A new, empty file beside `path` (`.<name>.<random>.tmp`), opened for writing. Made with
    O_CREAT|O_EXCL and mode 0o666, so the kernel applies the umask (and a folder's default ACL)
    exactly as it does for any file a program opens; mkstemp would make it 0600."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def replace_with(path: Path, fill: Callable[[int, Path], None], durable: bool = False) -> None:
    """`fill(fd, tmp)` writes the new content into a temporary file beside `path`, which is then
    renamed over `path`: a reader sees the old file or the new one, never half of one, and a
    link planted at `path` is replaced, never written through. `durable`: flushed to the disk
    before the rename (checkpoints). The temporary file is removed whatever happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp(path)
    try:
        try:
            fill(fd, tmp)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create `path` holding `data`, atomically and only if no such file exists: the content is
    written to a temporary file first, then linked to `path` (link() fails with EEXIST as
    O_CREAT|O_EXCL does), so no reader ever sees the file empty or half written. Where the
    filesystem has no links, `path` itself is created with O_CREAT|O_EXCL. Returns False when
    `path` already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp(path)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as err:
            if err.errno not in NO_LINKS:
                raise
        return _create_in_place(path, data)
    finally:
        os.unlink(tmp)


def _create_in_place(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        return False
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
    return True


def append(path: Path, data: bytes) -> None:
    """Add `data` at the end of `path` (made if missing, with the umask's mode) through an
    O_APPEND descriptor, so that every append lands at the end; a link at `path` is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o666)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)
