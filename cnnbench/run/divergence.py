"""A run whose numbers stopped being finite: what it says and what it keeps.

A checkpoint whose weights (or weight average) hold a NaN or an infinity is never written, so the
run's last good checkpoint is one that can be used; the advice after a divergence names the
last checkpoint whose weights are finite, checked by reading it back, or says there is none.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from cnnbench import rundir
from cnnbench.engine.finite import NotFinite, listed, nonfinite_names
from cnnbench.errors import UserError
from cnnbench.run.checkpoint import load_checkpoint


def nonfinite_weights(payload: Mapping[str, Any]) -> list[str]:
    """The names of a checkpoint payload's weights that hold a NaN or an infinity: the model's,
    and its weight average's as 'ema.NAME' (none: [])."""
    model = payload.get("model")
    names = nonfinite_names(model) if isinstance(model, Mapping) else []
    ema = payload.get("ema")
    shadow = ema.get("shadow") if isinstance(ema, Mapping) else None
    if isinstance(shadow, Mapping):
        names += [f"ema.{name}" for name in nonfinite_names(shadow)]
    return names


def require_finite_checkpoint(payload: Mapping[str, Any], path: Path) -> None:
    """Raise NotFinite instead of letting a checkpoint of non-finite weights be saved."""
    names = nonfinite_weights(payload)
    if names:
        raise NotFinite(f"{path.name} was not saved: its weights are NaN or infinite "
                        f"({listed(names)})", names)


def last_good_checkpoint(run_dir: Path) -> Path | None:
    """The run's last.pt, else its best.pt, whichever is first to load with finite weights;
    None when neither does."""
    for path in (rundir.last_checkpoint(run_dir), rundir.best_checkpoint(run_dir)):
        if not path.is_file():
            continue
        try:
            payload = load_checkpoint(path)
        except UserError:
            continue
        if isinstance(payload.get("model"), Mapping) and not nonfinite_weights(payload):
            return path
    return None


def divergence_advice(err: NotFinite, where: str, lr: Any, amp_name: str, run_dir: Path) -> str:
    """One paragraph: what was not finite and `where` ('in epoch 3'), the likely cause, and the
    checkpoint to go back to (or that there is none)."""
    good = last_good_checkpoint(run_dir)
    saved = any(p.exists() for p in (rundir.last_checkpoint(run_dir),
                                     rundir.best_checkpoint(run_dir)))
    if good is not None:
        kept = f" The last good checkpoint (finite weights) is {good}."
    else:
        kept = (" There is no checkpoint with finite weights to go back to ("
                + ("the run's checkpoints hold NaN or infinite weights, or cannot be read)."
                   if saved else "no epoch finished before it)."))
    fp16 = ", or fp16 overflowed (try trainer.amp=bf16 or off)" if amp_name == "fp16" else ""
    return (f"Training diverged {where}: {err}. The learning rate (optimizer.lr={lr}) is "
            f"probably too high{fp16}.{kept}")
