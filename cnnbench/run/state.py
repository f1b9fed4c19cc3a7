"""A run's training state as its checkpoints hold it, and putting it back (a resume).

`fit_payload` is what a checkpoint keeps of the fit (weights, optimizer, schedule, scaler, the
epoch counters, RNG and data order, EMA, the target's progress); the run adds its config, its
options and its clocks. `restore_fit` puts all of that back, so that a resumed run continues
exactly where the checkpoint left it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from cnnbench import rundir
from cnnbench.engine.distributed import DistInfo, unwrap
from cnnbench.engine.ema import averaged_weights
from cnnbench.engine.loop import Fit
from cnnbench.errors import UserError
from cnnbench.run.checkpoint import load_checkpoint, restore_rng_states, rng_states
from cnnbench.run.job import reseed_resumed
from cnnbench.settings.trainer import TrainerSettings


def fit_payload(fit: Fit, scaler) -> dict[str, Any]:
    return {
        "model": unwrap(fit.model).state_dict(), "optimizer": fit.optimizer.state_dict(),
        "scheduler": fit.schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": fit.state.epoch, "best_epoch": fit.state.best_epoch,
        "best_score": fit.state.best_score, "bad_epochs": fit.state.bad_epochs,
        "rng": rng_states(),
        "loader": fit.train_loader.state_dict(),
        "ema": fit.ema.state_dict() if fit.ema is not None else None,
        "timed_seconds": fit.state.timed_seconds,
        "target": fit.target.state_dict() if fit.target is not None else None,
    }


def check_compatible(ckpt: dict[str, Any], options: Mapping[str, Any], resume: str) -> None:
    theirs = ckpt.get("options", {})
    for key in ("model", "dataset"):
        if theirs.get(key) != options[key]:
            raise UserError(
                f"trainer.resume={resume} is a checkpoint of {key} '{theirs.get(key)}', but this "
                f"run asks for {key} '{options[key]}'. Resume with the same {key} (leave {key}= "
                f"off the command line: the run's own settings are reused), or start a new run "
                f"without trainer.resume.")


def restore_fit(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path,
                settings: TrainerSettings, dist: DistInfo | None = None) -> None:
    """The fit as the checkpoint left it: weights, optimizer, schedule, scaler, counters, the best
    epoch's weights (from best.pt), data order, EMA, RNG and the target's progress. Every
    process of a torchrun job restores rank 0's; ranks other than 0 then draw random numbers
    of their own again (`job.reseed_resumed`)."""
    try:
        unwrap(fit.model).load_state_dict(ckpt["model"])
        fit.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise UserError(f"trainer.resume={settings.resume} does not fit this model or "
                        f"optimizer ({str(err).splitlines()[0][:200]}). Resume with the "
                        f"settings the run was started with.") from None
    fit.schedule.load_state_dict(ckpt.get("scheduler") or {})
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    state = fit.state
    state.epoch, state.best_epoch = ckpt["epoch"], ckpt.get("best_epoch", 0)
    state.best_score, state.bad_epochs = ckpt.get("best_score"), ckpt.get("bad_epochs", 0)
    best_file = rundir.best_checkpoint(run_dir)
    if best_file.exists():
        best = load_checkpoint(best_file)
        if best["epoch"] == state.best_epoch:
            device = next(fit.model.parameters()).device
            state.best_weights = {k: v.to(device) for k, v in averaged_weights(best).items()}
    if "loader" in ckpt:
        fit.train_loader.load_state_dict(ckpt["loader"])
    if fit.ema is not None and ckpt.get("ema"):
        fit.ema.load_state_dict(ckpt["ema"])
    restore_rng_states(ckpt["rng"])
    if dist is not None:
        reseed_resumed(dist, settings.seed, state.epoch, fit.train_loader)
    state.timed_seconds = float(ckpt.get("timed_seconds") or 0.0)
    if fit.target is not None:
        fit.target.load_state_dict(ckpt.get("target"), settings.epochs)
