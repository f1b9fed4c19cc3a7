"""Run and sweep directory names: they sort by start time, never collide, and are one safe
directory on every common filesystem."""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from typing import Any


# A short random tag in run directory names: two runs started in the same second never collide.
# Hydra caches it (use_cache=True), so a sweep's directory is resolved once for all its jobs.
def new_run_id() -> str:
    return secrets.token_hex(3)


def stamped(*parts: str) -> str:
    """A directory name that sorts by start time and never collides: time, parts, random tag."""
    return "_".join([time.strftime("%Y-%m-%d_%H-%M-%S"), *parts, new_run_id()])


def free_sibling(folder: Path) -> Path:
    """The first of `folder`_2, `folder`_3, ... that does not exist: a new run's own folder
    beside one that is taken."""
    folder = Path(folder)
    n = 2
    while Path(f"{folder}_{n}").exists():
        n += 1
    return Path(f"{folder}_{n}")


def free_beside(folder: Path, name: str) -> Path:
    """A free folder called `name` beside `folder` (`name`_2, ... where `name` is taken): a new
    run's own folder in place of one inside `folder`."""
    place = Path(folder).parent / name
    return free_sibling(place) if place.exists() else place


# Characters a directory name cannot hold on common filesystems (Linux, macOS, Windows, SMB)
_UNSAFE_IN_NAMES = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')
NAME_MAX_BYTES = 255


def job_dirname(num: Any, overrides: str | None, limit: int = NAME_MAX_BYTES) -> str:
    """A sweep job's directory name, `<num>_<overrides>`, that is one safe directory: the
    characters filesystems refuse (`/` would even nest directories) become `_`, and a name over
    `limit` bytes (UTF-8) is cut, with a short hash of the full overrides appended so that it
    stays unique. The full overrides are in the job's .hydra/overrides.yaml."""
    overrides = "" if overrides is None else str(overrides)
    name = _UNSAFE_IN_NAMES.sub("_", f"{num}_{overrides}").rstrip(" .")
    if len(name.encode()) <= limit:
        return name
    digest = "~" + hashlib.sha1(overrides.encode()).hexdigest()[:10]
    head = name.encode()[:limit - len(digest)].decode(errors="ignore").rstrip(" .")
    return head + digest
