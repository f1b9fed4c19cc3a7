"""Checkpoints: plain dicts of tensors, numbers and strings, written atomically, loaded safely.

`torch.load(weights_only=True)` refuses anything but tensors and plain containers, so a
checkpoint from elsewhere cannot run code when loaded.
"""
from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from cnnbench.errors import UserError
from cnnbench.rundir import CHECKPOINT_DIR, Writer, last_checkpoint, write_bytes

FORMAT = "cnnbench-checkpoint-v1"


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus a format tag) to a temporary file, then rename it over `path`: the
    previous checkpoint stays whole until the new one is, and only the run's own training
    process (the holder of its lock) may replace it. A full disk (or quota, or file size limit)
    is a UserError that says so; the temporary file is removed either way."""
    buffer = io.BytesIO()  # serialised first: the write below then fails with a plain errno
    torch.save({"format": FORMAT, **payload}, buffer)
    data = buffer.getbuffer()
    run = path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
    try:
        write_bytes(path, data, Writer.run(run), durable=True)
    except OSError as err:
        if err.errno not in DISK_FULL:
            raise
        raise UserError(disk_full_message(path, len(data), err)) from None


def disk_full_message(path: Path, size: int, err: OSError) -> str:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    cause = {errno.EDQUOT: ", the disk quota is used up",
             errno.EFBIG: ", the file size limit is reached"}.get(err.errno, "")
    kept = "the previous one is kept" if path.exists() else "there is no earlier one"
    return (f"Cannot save the checkpoint {path.name}: the disk is full ({os.strerror(err.errno)}"
            f"{cause}) in {path.parent}, which needs {size / 1e6:,.1f} MB for it ({free}); "
            f"{kept}, and the partial file was removed. Free some space there (or write runs "
            f"elsewhere with hydra.run.dir=...), then resume the run.")


def require_resumable(payload: dict[str, Any], path: Path) -> int:
    """The number of epochs the checkpoint at `path` holds, if it has what a resume needs."""
    missing = [k for k, kind in (("model", dict), ("optimizer", dict), ("rng", dict))
               if not isinstance(payload.get(k), kind)]
    epoch = payload.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        missing.append("epoch")
    if missing:
        raise UserError(f"{path} cannot be resumed: it lacks {', '.join(missing)} (a damaged "
                        f"or foreign checkpoint, or a file saved by another tool). Resume from "
                        f"the run's own checkpoints/last.pt, or start a new run.")
    return epoch


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = last_checkpoint(path)
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}: the file does not exist. Give the path of a "
                        f"best.pt/last.pt file or of a run directory that has checkpoints/last.pt.")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes): the checkpoint was never written whole, "
                        f"so it cannot be loaded. Use another checkpoint of the run (best.pt) "
                        f"or start a new run.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 (pickle errors, truncated files, foreign objects)
        raise UserError(f"{path} is not a cnnbench checkpoint that can be loaded safely "
                        f"({type(err).__name__}: {str(err).splitlines()[0][:200]}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a cnnbench checkpoint (no '{FORMAT}' tag inside).")
    return payload


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
