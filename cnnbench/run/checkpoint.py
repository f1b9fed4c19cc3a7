"""Checkpoints: plain dicts of tensors, numbers and strings, written atomically, loaded safely.

`torch.load(weights_only=True)` refuses anything but tensors and plain containers, so a
checkpoint from elsewhere cannot run code when loaded.
"""
from __future__ import annotations

import errno
import io
import math
import os
import shlex
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cnnbench.errors import UserError
from cnnbench.rundir import CHECKPOINT_DIR, Writer, last_checkpoint, runs_inside, write_bytes

if TYPE_CHECKING:
    import torch

FORMAT = "cnnbench-checkpoint-v1"


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` (plus a format tag) to a temporary file, then rename it over `path`: the
    previous checkpoint stays whole until the new one is, and only the run's own training
    process (the holder of its lock) may replace it. A full disk (or quota, or file size limit)
    is a UserError that says so; the temporary file is removed either way."""
    import torch

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
    """The payload of a cnnbench checkpoint, loaded without running code, its every known entry
    of the type the schema (ENTRIES) gives it; anything else is one UserError paragraph."""
    path = Path(path)
    if path.is_dir():
        several = runs_inside(path)
        if several:
            what, example = several
            raise UserError(f"{what}, not one run: a checkpoint is one run's best.pt or last.pt "
                            f"(or the run's directory), e.g. "
                            f"checkpoint={shlex.quote(str(example))}")
        path = last_checkpoint(path)
    if not path.is_file():
        raise UserError(f"No checkpoint at {path}: the file does not exist. Give the path of a "
                        f"best.pt/last.pt file or of a run directory that has checkpoints/last.pt.")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes): the checkpoint was never written whole, "
                        f"so it cannot be loaded. {other_checkpoint(path)}")
    import torch  # only now: a path that holds no checkpoint is refused without it

    try:
        with warnings.catch_warnings():  # torch's own hints (pickle protocol, ...) are not ours
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 (pickle errors, truncated files, foreign objects)
        raise UserError(unloadable_message(path, err)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a cnnbench checkpoint (no '{FORMAT}' tag inside): give "
                        f"a best.pt or last.pt that cnnbench train wrote.")
    check_entries(payload, path)
    return payload


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and value >= 0)


def _score(value: Any) -> bool:  # the best score so far starts at an infinity
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and not math.isnan(value))


def _mapping(value: Any) -> bool:
    return isinstance(value, dict)


def _optional_mapping(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _plain(value: Any) -> bool:  # shown on the terminal: no control or escape characters
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float)) \
        or (isinstance(value, str) and value.isprintable() and len(value) <= 200)


def _options(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v)
                                           for k, v in value.items())


def _weights(value: Any) -> bool:  # a state dict: names to tensors
    import torch

    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in value.items())


def _generator(value: Any) -> bool:  # torch.Generator.get_state(): a 1-D uint8 tensor
    import torch

    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _rng(value: Any) -> bool:
    cuda = value.get("cuda", []) if isinstance(value, dict) else None
    return isinstance(value, dict) and _generator(value.get("torch")) \
        and isinstance(cuda, (list, tuple)) and all(_generator(s) for s in cuda)


def _optimizer(value: Any) -> bool:
    import torch

    groups = value.get("param_groups") if isinstance(value, dict) else None
    return isinstance(value, dict) and isinstance(value.get("state"), dict) \
        and isinstance(groups, list) and all(
            isinstance(g, dict) and isinstance(g.get("params"), list)
            and all(_count(i) for i in g["params"])
            and all(isinstance(g.get(k), (int, float, torch.Tensor)) for k in ("lr",) if k in g)
            for g in groups)


def _ema(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and _weights(value.get("shadow"))
                             and _count(value.get("steps")) and _count(value.get("updates")))


def _target(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(
        value.get(k) is None or fits(value[k])
        for k, fits in (("epochs_to_target", _count), ("planned_epochs", _count),
                        ("time_to_target_s", _seconds))))


# The checkpoint schema: each entry a checkpoint may hold, and what it must be when present.
ENTRIES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epoch": (_count, "a whole number of epochs, 0 or more"),
    "best_epoch": (lambda v: v is None or _count(v), "a whole number of epochs or null"),
    "bad_epochs": (_count, "a whole number of epochs, 0 or more"),
    "best_score": (_score, "a number"),
    "timed_seconds": (_seconds, "seconds, a finite number 0 or more"),
    "train_seconds": (_seconds, "seconds, a finite number 0 or more"),
    "energy_joules": (_seconds, "joules, a finite number 0 or more"),
    "config": (lambda v: isinstance(v, str), "the run's config as YAML text"),
    "options": (_options, "a mapping of the run's choices (plain, printable values)"),
    "model": (_weights, "a mapping of weight names to tensors"),
    "optimizer": (_optimizer, "the optimizer's state (its state and param_groups)"),
    "scheduler": (_mapping, "the scheduler's state, a mapping"),
    "scaler": (_mapping, "the gradient scaler's state, a mapping"),
    "rng": (_rng, "the random generators' states (uint8 tensors)"),
    "loader": (lambda v: isinstance(v, dict) and all(_generator(s) for s in v.values()),
               "the loader's generator states (uint8 tensors)"),
    "ema": (_ema, "the weight average (its steps, updates and weights) or null"),
    "target": (_target, "the target stop's epochs and seconds, or null"),
    "data": (_optional_mapping, "the classes and normalization, a mapping or null"),
    "pretrained": (_optional_mapping, "where the starting weights came from, a mapping or null"),
}


def check_entries(payload: dict[str, Any], path: Path) -> None:
    bad = [(key, what) for key, (fits, what) in ENTRIES.items()
           if key in payload and not fits(payload[key])]
    if bad:
        found = "; ".join(f"'{key}' holds {short(payload[key])} where {what} belongs"
                          for key, what in bad)
        raise UserError(f"{path} is a damaged or edited cnnbench checkpoint: {found}. "
                        f"{other_checkpoint(path)}")


def short(value: Any) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool, type(None))) \
        else f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def other_checkpoint(path: Path) -> str:
    """Where to turn when `path` cannot be used: the run's other checkpoint, if it has one."""
    for name in ("best.pt", "last.pt"):
        sibling = path.with_name(name)
        if sibling != path and sibling.is_file() and sibling.stat().st_size > 0:
            return f"Use the run's other checkpoint, {sibling}, or start a new run."
    return "Use another checkpoint, or start a new run."


def unloadable_message(path: Path, err: Exception) -> str:
    """Why torch could not load `path` safely, in cnnbench's words (torch's own message
    suggests switching the safe loading off, which cnnbench never does)."""
    with path.open("rb") as f:
        zipped = f.read(4) == b"PK\x03\x04"  # how every file torch.save writes begins
    foreign = any(words in str(err) for words in ("Unsupported global", "Weights only load"))
    if zipped and not foreign:
        return (f"{path} is not a cnnbench checkpoint that can be loaded: it is cut short or "
                f"damaged ({path.stat().st_size:,} bytes that begin as a saved file does but do "
                f"not end as one: a copy or a write that stopped part way). "
                f"{other_checkpoint(path)}")
    objects = ("it holds Python objects besides tensors, numbers and text"
               if foreign else
               "it is not a file torch.save wrote, or it holds more than tensors, numbers and "
               f"text ({type(err).__name__})")
    return (f"{path} is not a cnnbench checkpoint: {objects}, and cnnbench loads no such file "
            f"(loading it could run code). Give a best.pt or last.pt that cnnbench train wrote.")


def rng_states() -> dict[str, Any]:
    import torch

    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
