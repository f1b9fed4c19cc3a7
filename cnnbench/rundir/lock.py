"""The lock that lets one process at a time write a run directory."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from cnnbench.errors import UserError
from cnnbench.rundir.layout import LOCK_FILE
from cnnbench.rundir.writer import write_json_atomic


class RunLock:
    """<run>/.cnnbench.lock holds the writer's host and pid: two processes never write one run
    directory at once. A lock whose process is gone (killed, machine restarted) is stale."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    def owner(self) -> dict[str, Any] | None:
        """The live process holding the lock, or None (no lock, or a stale one)."""
        try:
            owner = json.loads(self.path.read_text())
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if host != socket.gethostname():
            return owner  # another machine's process: assume it is alive
        return owner if _alive(pid) and pid != os.getpid() else None

    def refuse_if_held(self) -> None:
        """A UserError when a live process holds the lock (checked before anything is written)."""
        owner = self.owner()
        if owner is not None:
            raise UserError(
                f"{self.path.parent} is being written by another cnnbench process (pid "
                f"{owner['pid']} on {owner['host']}, since {owner.get('since', '?')}). Two "
                f"processes must not write one run: wait for it to end, or stop it first. If no "
                f"such process exists, delete {self.path}.")

    def acquire(self) -> None:
        self.refuse_if_held()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.path.unlink()
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


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
