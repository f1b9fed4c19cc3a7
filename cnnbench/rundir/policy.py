"""Who may write which file: the rules every file cnnbench writes is checked against.

A `Writer` names the command that writes and the folders it writes into: a run directory (its
own training process, or `cnnbench eval`'s new run), an out= folder, or cnnbench's cache folder.
It never writes outside them, and before it replaces a file that exists it asks:

* a checkpoint (a file in a run's checkpoints/ folder) is replaced only by that run's own
  training process, the process that holds the run's lock;
* a training run's record (its metrics.json) is never replaced by another command;
* in an out= folder, only an earlier output of the same command is replaced: a file of one of
  its own names, in a folder the command recognises as its own earlier output (`replaceable`),
  or a file this writer wrote itself;
* in a run directory, nothing is replaced while another live process owns it (its lock).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from cnnbench.errors import UserError
from cnnbench.rundir.layout import CHECKPOINT_DIR, METRICS_FILE
from cnnbench.rundir.lock import RunLock
from cnnbench.rundir.stored_text import read_stored

TRAIN, CACHE = "train", "cache"  # a run's own process; cnnbench's cache folder


class Writer:
    """The command that writes, the folders it may write into, and the names of earlier outputs
    it may replace there. It remembers the files it wrote, which it may always replace."""

    def __init__(self, command: str, roots: Iterable[Path],
                 replaceable: Iterable[str] = ()) -> None:
        self.command = command
        self.roots = tuple(Path(r) for r in roots)
        self.replaceable = frozenset(replaceable)
        self.written: set[str] = set()

    @classmethod
    def run(cls, run_dir: Path) -> Writer:
        """The writer of a run directory's own files (metrics, curves, checkpoints, pictures):
        the process that owns the run."""
        return cls(TRAIN, (run_dir,))

    def check(self, path: Path) -> None:
        """A UserError (one paragraph) when this writer must not write `path`."""
        path = Path(path)
        if not any(_inside(path, root) for root in self.roots):
            raise UserError(
                f"cnnbench {self.command} does not write {path}: it writes only into "
                f"{' or '.join(str(r) for r in self.roots)}. Give a path inside the folder "
                f"the command writes to.")
        if not os.path.lexists(path) or self.command == CACHE:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            raise UserError(f"{path} is a folder, so cnnbench {self.command} cannot write its "
                            f"file there: choose another name or folder.")
        if is_checkpoint(path):
            self._check_checkpoint(path)
        elif self.command == TRAIN:
            _refuse_if_owned_by_another(path)
        elif path.name == METRICS_FILE and is_training_record(path):
            raise UserError(
                f"{path} is the record of the training run in {path.parent}, and cnnbench "
                f"{self.command} never replaces another run's files: give it a folder of its "
                f"own with out=DIR (a new one, or an earlier output of cnnbench {self.command}).")
        elif not self.has_written(path) and path.name not in self.replaceable:
            raise UserError(
                f"{path} already exists and is not an earlier output of cnnbench "
                f"{self.command}, so it is left as it is. Choose another out= (a new folder or "
                f"file name), or move that file away first.")

    def wrote(self, path: Path) -> None:
        self.written.add(os.path.abspath(path))

    def has_written(self, path: Path) -> bool:
        return os.path.abspath(path) in self.written

    def _check_checkpoint(self, path: Path) -> None:
        run = path.parent.parent
        if self.command == TRAIN and RunLock(run).mine():
            return
        raise UserError(
            f"{path} is a checkpoint of the run in {run}, and only that run's own training "
            f"process replaces it; cnnbench {self.command} leaves it as it is. Write to "
            f"another file: leave out= off for the default place, or give another path.")


def is_checkpoint(path: Path) -> bool:
    """A file in a run's checkpoints/ folder (best.pt, last.pt, or any other kept there)."""
    return Path(path).parent.name == CHECKPOINT_DIR


def is_training_record(path: Path) -> bool:
    """Whether the metrics.json at `path` is a training run's (anything but `cnnbench eval`'s
    own record, including one that cannot be read)."""
    try:
        data = json.loads(read_stored(path))
    except (OSError, ValueError, RecursionError):  # unreadable, too large, nested too deep
        return True
    return not (isinstance(data, dict) and data.get("kind") == "eval")


def _inside(path: Path, root: Path) -> bool:
    """Whether `path` is in `root` (or below), following links in the folders on the way but not
    a link at the file's own name (which the writer replaces, never writes through)."""
    folder = os.path.realpath(Path(path).parent)
    root_path = os.path.realpath(root)
    return os.path.commonpath([folder, root_path]) == root_path


def _refuse_if_owned_by_another(path: Path) -> None:
    """A run's file is replaced only while no other live process owns the run: the nearest
    live lock, in the file's folder or the one above it (a run's checkpoints/, a sweep's jobs),
    decides."""
    for folder in (Path(path).parent, Path(path).parent.parent):
        lock = RunLock(folder)
        if lock.mine():
            return
        if lock.owner() is not None:
            lock.refuse_if_held()
