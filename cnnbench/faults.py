"""What a fault of the machine means to the user, as one paragraph: an OS error on a path (a
full disk, a read-only file system, a name too long, ...), memory that ran out, a file name that
is not valid UTF-8. Anything else is not a fault of the machine and gets no paragraph here."""
from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass

from cnnbench.errors import is_out_of_memory, printable

LONGEST_SHOWN = 160  # characters of a path shown; a longer one is cut in the middle


@dataclass(frozen=True)
class Hints:
    """What a command's user can change: where it writes, and how to make it need less memory."""

    elsewhere: str = "write somewhere else"
    smaller: str = "ask for less (smaller images, fewer of them, smaller batches)"


@dataclass(frozen=True)
class Fault:
    text: str       # the paragraph
    exit_code: int  # 2: the place or input the user gave; 1: the machine gave out (memory)


def shown_path(path: object) -> str:
    """A path as a paragraph shows it: printable, and cut in the middle when very long."""
    text = printable(os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path))
    if len(text) <= LONGEST_SHOWN:
        return text
    return f"{text[:80]}...{text[-60:]} ({len(text):,} characters)"


# errno -> (what is wrong, with {where}; what to do, with {elsewhere})
OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk holding {where} is full", "free some space there, or {elsewhere}"),
    errno.EDQUOT: ("the disk quota for {where} is used up",
                   "free some of your files there, or {elsewhere}"),
    errno.EFBIG: ("{where} would be larger than the file system or its limit allows",
                  "{elsewhere}"),
    errno.EROFS: ("{where} is on a read-only file system",
                  "copy what you need to a writable disk and work there, or {elsewhere}"),
    errno.EACCES: ("permission to {where} is denied", "fix its permissions, or {elsewhere}"),
    errno.EPERM: ("the operation on {where} is not permitted",
                  "fix its permissions or owner, or {elsewhere}"),
    errno.ENAMETOOLONG: ("the path {where} is longer than the file system allows",
                         "give a shorter path (at most 255 bytes a name, 4096 in all)"),
    errno.EMFILE: ("this process has too many files open",
                   "raise the limit (e.g. `ulimit -n 65536`) or use fewer data loader workers"),
    errno.ENFILE: ("the system has too many files open", "close other programs and try again"),
    errno.ENOENT: ("{where} does not exist", "check the path (a folder on the way may be "
                   "missing or was removed while the command ran)"),
    errno.ENOTDIR: ("a part of {where} is a file where a folder must be", "check the path"),
    errno.EEXIST: ("{where} already exists and is not a folder", "give another path"),
    errno.EISDIR: ("{where} is a folder where a file must be", "give a file's path"),
    errno.EPIPE: ("{where} was closed by its reader (a pipe whose reader went away)",
                  "keep the reader open until the command ends"),
    errno.EIO: ("reading or writing {where} failed with an input/output error (a failing disk, "
                "a network file system, or a closed terminal)", "check the disk, then try again"),
}


def os_fault(err: OSError, hints: Hints) -> Fault | None:
    """The paragraph of an OS error the user can act on, or None (a bug: keep the traceback)."""
    if err.errno == errno.ENOMEM:
        return memory_fault(err, hints)
    if err.errno not in OS_FAULTS:
        return None
    where = err.filename if err.filename is not None else err.filename2
    what, todo = OS_FAULTS[err.errno]
    shown = shown_path(where) if where is not None else "the output"
    what = what.format(where=shown)
    todo = todo.format(elsewhere=hints.elsewhere)
    reason = err.strerror or os.strerror(err.errno)
    what = what if what.startswith(shown) else what[0].upper() + what[1:]  # a path as is
    return Fault(f"{what} ({reason}, {errno.errorcode[err.errno]}): "
                 f"{todo}.", 2)


def memory_fault(err: BaseException, hints: Hints) -> Fault | None:
    """Memory that ran out (MemoryError, torch's allocators, ENOMEM) as one paragraph."""
    text = str(err)
    if not isinstance(err, (MemoryError, OSError)) and not is_out_of_memory(err):
        return None
    asked = re.search(r"allocate (\d+) bytes", text)
    detail = (f"{int(asked.group(1)) / 1e9:,.1f} GB were asked for at once" if asked else
              f"{type(err).__name__}: {(text.strip().splitlines() or ['-'])[-1][:200]}")
    return Fault(f"Out of memory ({detail}): {hints.smaller}, or use a machine with more "
                 f"memory.", 1)


def unicode_fault(err: UnicodeError) -> Fault | None:
    """A file name that is not valid UTF-8 (Python holds its bytes as surrogate escapes) met
    where text must be written, as one paragraph; other Unicode errors are not faults."""
    text = getattr(err, "object", None)
    if not isinstance(text, str) or not re.search("[\udc80-\udcff]", text):
        return None
    return Fault(f"The file name {shown_path(text)} is not valid UTF-8 (the bytes shown as \\xNN), "
                 f"and it cannot be written as text: rename the file to a UTF-8 name (e.g. "
                 f"`convmv -f latin1 -t utf8 --notest FILE`) or leave it out.", 2)


PEER_WORDS = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
              "Timed out waiting", "collective operation timeout", "communicator was aborted")


def peer_fault(err: BaseException) -> Fault | None:
    """A collective of a torchrun job that failed because another process of the job went away
    (it was killed, its machine stopped, or it waited past CNNBENCH_DIST_TIMEOUT), as one
    paragraph; None for anything else."""
    text = str(err)
    distributed = type(err).__name__ == "DistBackendError" or "gloo" in text or "NCCL" in text
    if not distributed or not any(w in text for w in PEER_WORDS):
        return None
    first = re.sub(r"^\[[^\]]*\]\s*", "", (text.strip().splitlines() or ["-"])[0])
    first = first.split(". ")[0].rstrip(".")
    return Fault(f"Another process of this torchrun job went away (killed, its machine stopped, "
                 f"or a wait longer than CNNBENCH_DIST_TIMEOUT seconds: {first[:160]}), so this "
                 f"one stopped too. Rank 0's run directory keeps the last finished epoch in "
                 f"checkpoints/last.pt: resume it with `cnnbench train trainer.resume=<run "
                 f"directory>` (on any number of processes) once every machine is up.", 1)


def fault_of(err: BaseException, hints: Hints | None = None) -> Fault | None:
    """The one paragraph for a fault of the machine, or None when `err` is not one. An error
    raised `from` a fault (logging's "Unable to configure handler" for a log file the disk had
    no room for) is that fault."""
    hints = hints or Hints()
    fault = None
    if isinstance(err, OSError):
        fault = os_fault(err, hints)
    elif isinstance(err, UnicodeError):
        fault = unicode_fault(err)
    elif isinstance(err, (MemoryError, RuntimeError)):
        fault = memory_fault(err, hints) or peer_fault(err)
    if fault is None and err.__cause__ is not None:
        return fault_of(err.__cause__, hints)
    return fault
