"""Checkpoints: plain dicts of tensors, numbers and strings, written atomically, loaded safely.

`torch.load(weights_only=True)` refuses anything but tensors and plain containers, so a
checkpoint from elsewhere cannot run code when loaded.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

FORMAT = "cnnbench-checkpoint-v1"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus a format tag) to a temporary file, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}: the file does not exist. Give the path of a "
                        f"best.pt/last.pt file or of a run directory that has checkpoints/last.pt.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, foreign objects
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
