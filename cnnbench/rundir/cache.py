"""cnnbench's own cache folder: what it keeps between runs (decoded image folders), never in
the user's folders."""
from __future__ import annotations

import os
from pathlib import Path

from cnnbench.rundir.policy import CACHE, Writer


def cache_dir() -> Path:
    """$CNNBENCH_CACHE_DIR, else $XDG_CACHE_HOME/cnnbench, else ~/.cache/cnnbench."""
    if os.environ.get("CNNBENCH_CACHE_DIR"):
        return Path(os.environ["CNNBENCH_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cnnbench"
    return Path.home() / ".cache" / "cnnbench"


def cache_writer() -> Writer:
    """The writer of cnnbench's cache folder, which replaces its own files there."""
    return Writer(CACHE, (cache_dir(),))
