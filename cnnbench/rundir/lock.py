"""The lock that makes one process the owner of a run directory."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

from cnnbench.errors import UserError
from cnnbench.rundir.files import create_exclusive
from cnnbench.rundir.layout import CHECKPOINT_DIR, HYDRA_DIR, LOCK_FILE, LOG_FILE
from cnnbench.rundir.made_folders import remove_empty, topmost_missing
from cnnbench.rundir.stored_text import read_stored


class RunLock:
    """<run>/.cnnbench.lock names the process that owns a run directory (its host, pid, start
    time and command, and for a torchrun job its rendezvous, run id and size): two processes never write one run directory at once. It is created
    atomically, only if no live process holds it, before anything is written into the folder,
    and removed when its process is done. A lock is stale when its process is gone, or when its
    pid now belongs to another process (another start time: after a reboot, pid 1 is alive but
    is not the process that wrote the lock); a stale lock is taken over.

    A process that already owns the folder (an outer part of the same command took the lock)
    acquires it again without writing; only the part that created it removes it."""

    def __init__(self, run_dir: Path, command: str = "train") -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.command = command
        self.held = False          # this object created the lock file
        self.made: Path | None = None  # ... and the folders down to it: the topmost one

    def read(self) -> dict[str, Any] | None:
        try:  # someone else's file: bounded, and any JSON at all
            owner = json.loads(read_stored(self.path))
            pid, host = owner["pid"], owner["host"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31 \
                or not isinstance(host, str):
            return None  # not a process this machine could have: no lock
        return owner

    def owner(self) -> dict[str, Any] | None:
        """The live process, other than this one, that holds the lock; None when no lock, a
        stale one, or this process's own."""
        owner = self.read()
        if owner is None or process_gone(owner):
            return None
        if owner["host"] == socket.gethostname() and int(owner["pid"]) == os.getpid():
            return None
        return owner

    def mine(self) -> bool:
        """Whether this process holds the lock."""
        owner = self.read()
        return (owner is not None and int(owner["pid"]) == os.getpid()
                and owner["host"] == socket.gethostname()
                and owner.get("started") in (None, process_start_time(os.getpid())))

    def refuse_if_held(self) -> None:
        """A UserError when a live process holds the lock (checked before anything is written)."""
        owner = self.owner()
        if owner is not None:
            raise UserError(
                f"{self.path.parent} is being written by another cnnbench process (pid "
                f"{owner['pid']} on {owner['host']}, since {owner.get('since', '?')}"
                f"{job_words(owner.get('job'))}). Two processes must not write one run: wait for "
                f"it to end, or stop it first. If no such process exists, delete {self.path}.")

    def acquire(self) -> None:
        if self.mine():
            return
        folder = self.path.parent
        refuse_planted_links(folder, self.command)
        self.made = topmost_missing(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record = json.dumps({**this_process(), "command": self.command, "job": torchrun_job(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode() + b"\n"
        with _guarded(folder):  # takers of a stale lock wait for one another
            for _ in range(2):
                if create_exclusive(self.path, record):
                    self.held = True
                    return
                self.refuse_if_held()
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # stale: its process is gone
        self.refuse_if_held()
        raise UserError(f"Cannot take the lock {self.path}: it keeps reappearing. Another "
                        f"program is writing into {folder}; stop it, then run again.")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.mine():
            with contextlib.suppress(OSError):
                self.path.unlink()
        remove_empty(self.path.parent, self.made)  # the folders it made, left empty

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def torchrun_job() -> dict[str, Any] | None:
    """The torchrun job this process belongs to, from the environment torchrun sets: its
    rendezvous (MASTER_ADDR:MASTER_PORT), run id (--rdzv-id) and size; None outside torchrun."""
    env = os.environ
    if "TORCHELASTIC_RUN_ID" not in env and "LOCAL_WORLD_SIZE" not in env:
        return None
    world, local = int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_WORLD_SIZE", "1"))
    host, port = env.get("MASTER_ADDR"), env.get("MASTER_PORT")
    return {"launcher": "torchrun", "rendezvous": f"{host}:{port}" if host and port else None,
            "run_id": env.get("TORCHELASTIC_RUN_ID"), "world_size": world,
            "nodes": int(env.get("GROUP_WORLD_SIZE") or max(1, world // max(1, local)))}


def job_words(job: Any) -> str:
    """', torchrun job <id> at HOST:PORT, 2 processes on 2 nodes' ('' for no job)."""
    if not isinstance(job, dict):
        return ""
    run_id = job.get("run_id")
    named = f" {run_id}" if run_id and run_id != "none" else ""
    at = f" at {job['rendezvous']}" if job.get("rendezvous") else ""
    return (f", torchrun job{named}{at}, {job.get('world_size', '?')} processes on "
            f"{job.get('nodes', '?')} node{'s' if job.get('nodes') != 1 else ''}")


# What is written into a run (or sweep) directory by name without cnnbench's writer (which
# replaces a link, never writes through it): Hydra's config files and its log, and the folder
# of checkpoints, which a run fills.
WRITTEN_BY_NAME = (HYDRA_DIR, f"{HYDRA_DIR}/config.yaml", f"{HYDRA_DIR}/hydra.yaml",
                   f"{HYDRA_DIR}/overrides.yaml", LOG_FILE, CHECKPOINT_DIR, "multirun.yaml")


def refuse_planted_links(folder: Path, command: str) -> None:
    """Refuse, before a command takes `folder` to write into it, a symbolic link at a name that
    is written through (WRITTEN_BY_NAME): a run directory from elsewhere could hold one that
    leads to any file the user can write (`train.log -> ~/.bashrc`); and, at a name written as
    a file, anything but a regular file (a named pipe would hang the writer, a device take
    what it writes)."""
    for name in WRITTEN_BY_NAME:
        path = Path(folder) / name
        if os.path.islink(path):
            raise UserError(
                f"{path} is a symbolic link (to {os.readlink(path)}), and cnnbench {command} "
                f"writes there: through the link it would write to a file outside {folder}. "
                f"cnnbench never makes such links, so the directory was changed or comes from "
                f"elsewhere: remove the link (or copy the directory without links, cp -rL), "
                f"then run again.")
        kind = _special_kind(path) if name not in (HYDRA_DIR, CHECKPOINT_DIR) else None
        if kind is not None:
            raise UserError(
                f"{path} is {kind}, not a regular file, and cnnbench {command} writes there: "
                f"the write would hang or go where no file keeps it. cnnbench never makes "
                f"such files, so the directory was changed or comes from elsewhere: remove "
                f"{path.name}, then run again.")


def _special_kind(path: Path) -> str | None:
    """What `path` is where it exists and is not a regular file ('a named pipe', ...)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    kinds = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a folder"))
    return next((words for test, words in kinds if test(mode)), None)


@contextlib.contextmanager
def _guarded(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder while its lock is taken, where the system offers one."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def this_process() -> dict[str, Any]:
    """This process as a lock or a search's trial names its owner: host, pid and start time."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": process_start_time(pid)}


def process_gone(owner: Mapping[str, Any]) -> bool:
    """Whether the process that `owner` names (see `this_process`) has ended: it is not running,
    or its pid now belongs to another process (another start time: after a reboot, pid 1 is
    alive but is not the process that was named). Another machine's process is taken to be
    alive: only its own machine can tell."""
    pid, host = int(owner["pid"]), str(owner["host"])
    if host != socket.gethostname():
        return False
    if not _alive(pid):
        return True
    started = owner.get("started")
    return started is not None and process_start_time(pid) not in (None, started)


def process_start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks after boot (/proc/<pid>/stat, field 22);
    None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path(f"/proc/{pid}/stat").exists():  # a zombie is not alive
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return True
    return True
