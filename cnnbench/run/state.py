"""A run's training state as its checkpoints hold it, and putting it back (a resume).

`fit_payload` is what a checkpoint keeps of the fit (weights, optimizer, schedule, scaler, the
epoch counters, RNG and data order, EMA, the target's progress); the run adds its config, its
options and its clocks. `restore_fit` puts all of that back, so that a resumed run continues
exactly where the checkpoint left it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from cnnbench import rundir
from cnnbench.data.preprocessing import Preprocessing
from cnnbench.engine.distributed import DistInfo, unwrap
from cnnbench.engine.ema import averaged_weights
from cnnbench.engine.loop import Fit
from cnnbench.errors import UserError
from cnnbench.run.checkpoint import load_checkpoint, restore_rng_states, rng_states
from cnnbench.run.job import reseed_resumed
from cnnbench.run.trained import weights_misfit
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


def check_compatible(ckpt: dict[str, Any], options: Mapping[str, Any], resume: str,
                     model_cfg: Any = None) -> None:
    """The checkpoint is of this run's model and dataset; with `model_cfg`, its weights fit the
    model that config describes, found before the model is built (and takes its memory)."""
    theirs = ckpt.get("options", {})
    for key in ("model", "dataset"):
        if theirs.get(key) != options[key]:
            raise UserError(
                f"trainer.resume={resume} is a checkpoint of {key} '{theirs.get(key)}', but this "
                f"run asks for {key} '{options[key]}'. Resume with the same {key} (leave {key}= "
                f"off the command line: the run's own settings are reused), or start a new run "
                f"without trainer.resume.")
    if model_cfg is not None and ckpt.get("data") is not None:
        prep = Preprocessing.checked(ckpt["data"], resume)
        why = weights_misfit(model_cfg, ckpt["model"], in_channels=prep.channels,
                             image_size=(prep.height, prep.width), num_classes=len(prep.classes))
        if why:
            raise UserError(f"trainer.resume={resume} does not fit this model ({why}). Resume "
                            f"with the settings the run was started with.")


def restore_fit(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path,
                settings: TrainerSettings, dist: DistInfo | None = None) -> None:
    """The fit as the checkpoint left it: weights, optimizer, schedule, scaler, counters, the best
    epoch's weights (from best.pt), data order, EMA, RNG and the target's progress. Every
    process of a torchrun job restores rank 0's; ranks other than 0 then draw random numbers
    of their own again (`job.reseed_resumed`). The checkpoint is a file from disk: a part that
    its schema lets through but that the thing it restores refuses is one paragraph too."""
    try:
        unwrap(fit.model).load_state_dict(ckpt["model"])
        fit.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
        raise UserError(f"trainer.resume={settings.resume} does not fit this model or "
                        f"optimizer ({str(err).splitlines()[0][:200]}). Resume with the "
                        f"settings the run was started with.") from None
    for what, restore in RESTORED:
        try:
            restore(ckpt, fit, scaler, run_dir)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
            raise UserError(
                f"trainer.resume={settings.resume}: the {what} the checkpoint holds cannot be "
                f"restored ({type(err).__name__}: {str(err).splitlines()[0][:200]}), so the "
                f"checkpoint is damaged or was edited. Resume from another checkpoint of the "
                f"run, or start a new run without trainer.resume.") from None
    if dist is not None:
        reseed_resumed(dist, settings.seed, fit.state.epoch, fit.train_loader)
    fit.state.timed_seconds = float(ckpt.get("timed_seconds") or 0.0)
    if fit.target is not None:
        fit.target.load_state_dict(ckpt.get("target"), settings.epochs)


def _restore_schedule(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    fit.schedule.load_state_dict(ckpt.get("scheduler") or {})


def _restore_scaler(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])


def _restore_counters(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    """The epoch counters, and the best epoch's weights where best.pt holds that epoch."""
    state = fit.state
    state.epoch, state.best_epoch = ckpt["epoch"], ckpt.get("best_epoch", 0)
    state.best_score, state.bad_epochs = ckpt.get("best_score"), ckpt.get("bad_epochs", 0)
    best_file = rundir.best_checkpoint(run_dir)
    if best_file.exists():
        best = load_checkpoint(best_file)
        if best.get("epoch") == state.best_epoch and "model" in best:
            device = next(fit.model.parameters()).device
            state.best_weights = {k: v.to(device) for k, v in averaged_weights(best).items()}


def _restore_loader(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    if "loader" in ckpt:
        fit.train_loader.load_state_dict(ckpt["loader"])


def _restore_ema(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    if fit.ema is not None and ckpt.get("ema"):
        fit.ema.load_state_dict(ckpt["ema"])


def _restore_rng(ckpt: dict[str, Any], fit: Fit, scaler, run_dir: Path) -> None:
    restore_rng_states(ckpt["rng"])


# What a resume puts back after the weights and the optimizer, in order, each named for the
# paragraph that says it could not be.
RESTORED: tuple[tuple[str, Callable[..., None]], ...] = (
    ("schedule", _restore_schedule), ("gradient scaler", _restore_scaler),
    ("epoch counters and best weights", _restore_counters), ("data order", _restore_loader),
    ("weight average", _restore_ema), ("random generators' states", _restore_rng))
