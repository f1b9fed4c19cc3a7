"""Loaded at start-up by a `cnnbench` process a test starts with this folder on PYTHONPATH: a
simulated disk, and a known point to stop at. Nothing here is part of cnnbench.

CNNBENCH_FAULT_DIR=FOLDER: every write under FOLDER (open for writing, os.open with a write
flag, mkdir of a new folder, rename or replace onto it; unlink too for EROFS) fails with
CNNBENCH_FAULT_ERRNO (default ENOSPC), except files whose names contain one of the
comma-separated CNNBENCH_FAULT_SPARE (a disk with room left for a small file, say).

CNNBENCH_PAUSE_AT=module:function (or module:Class.method): that function first writes the pid
to CNNBENCH_PAUSED_FILE, then sleeps for up to two minutes (a signal ends the sleep), then runs.
"""
import builtins
import errno
import functools
import importlib
import io
import os
import time

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _simulated_disk(folder, code, spare):
    def hit(path):
        if isinstance(path, int):
            return False
        full = os.path.abspath(os.fsdecode(path))
        inside = full == folder or full.startswith(folder + os.sep)
        return inside and not any(s in os.path.basename(full) for s in spare)

    def fail(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    def guarded(original, check):
        @functools.wraps(original)
        def call(*args, **kwargs):
            path = check(*args, **kwargs)
            if path is not None:
                fail(path)
            return original(*args, **kwargs)
        return call

    def opened(file, mode="r", *a, **k):
        return file if any(c in mode for c in "wax+") and hit(file) else None

    def os_opened(path, flags, *a, **k):
        return path if flags & WRITE_FLAGS and hit(path) else None

    def made(path, *a, **k):
        return path if hit(path) and not os.path.isdir(path) else None

    def moved(src, dst, *a, **k):
        return dst if hit(dst) else None

    def removed(path, *a, **k):
        return path if hit(path) else None

    builtins.open = io.open = guarded(builtins.open, opened)
    os.open = guarded(os.open, os_opened)
    os.mkdir = guarded(os.mkdir, made)
    os.replace = guarded(os.replace, moved)
    os.rename = guarded(os.rename, moved)
    if code == errno.EROFS:
        os.unlink = guarded(os.unlink, removed)
        os.remove = guarded(os.remove, removed)


def _pause_at(target, paused_file):
    module_name, _, qualname = target.partition(":")
    owner = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    @functools.wraps(original)
    def paused(*args, **kwargs):
        with open(paused_file, "w") as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return original(*args, **kwargs)

    setattr(owner, name, paused)


if os.environ.get("CNNBENCH_FAULT_DIR"):
    _simulated_disk(os.path.abspath(os.environ["CNNBENCH_FAULT_DIR"]),
                    getattr(errno, os.environ.get("CNNBENCH_FAULT_ERRNO", "ENOSPC")),
                    [s for s in os.environ.get("CNNBENCH_FAULT_SPARE", "").split(",") if s])
if os.environ.get("CNNBENCH_PAUSE_AT"):
    _pause_at(os.environ["CNNBENCH_PAUSE_AT"], os.environ["CNNBENCH_PAUSED_FILE"])
