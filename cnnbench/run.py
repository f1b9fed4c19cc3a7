"""One training run, from a composed config to the files in its run directory.

config -> Data -> Loaders (on the device) -> Model -> Optimizer / Schedule -> Fit -> test metrics.
Whatever happens (completion, Ctrl-C, divergence, an error), the run directory keeps the config,
the curves so far, the last checkpoint and a metrics.json whose `status` says how it ended.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import nn

from . import __version__
from .checkpoint import rng_states, save_checkpoint
from .data import DeviceLoader, ImageData, load_dataset
from .errors import UserError
from .evaluation.evaluate import evaluate_test_set
from .evaluation.settings import EvaluationSettings
from .hparams import log_hparams
from .models import count_parameters
from .runtime import Runtime, make_runtime, seed_everything
from .schedule import build_schedule
from .settings import TrainerSettings
from .sinks import (ConsoleProgress, HistoryCSV, TensorBoardSink, summary_table,
                    write_json_atomic)
from .train import Diverged, Fit, evaluate


def build_model(cfg: DictConfig, data: ImageData) -> nn.Module:
    """The model of `cfg.model`, shaped by the dataset (channels, image size, classes)."""
    try:
        return instantiate(cfg.model, in_channels=data.channels, image_size=list(data.image_size),
                           num_classes=data.num_classes, _convert_="all")
    except UserError:
        raise
    except Exception as err:
        cause = err.__cause__ or err
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(f"The model config could not be built: {cause}. Check the model.* "
                        f"options (`cnnbench train --cfg job` shows them).") from None


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    lr = cfg.optimizer.get("lr")
    if lr is not None and (not isinstance(lr, (int, float)) or lr <= 0):
        raise UserError(f"optimizer.lr={lr!r} is not valid: the learning rate must be a number "
                        f"above 0, e.g. optimizer.lr=0.001.")
    try:
        return instantiate(cfg.optimizer, _convert_="all")(model.parameters())
    except Exception as err:
        cause = err.__cause__ or err
        raise UserError(f"The optimizer could not be built from optimizer.*: {cause}.") from None


def run_options(choices: Mapping[str, str], cfg: DictConfig) -> dict[str, Any]:
    """What distinguishes this run: the chosen config options and the main hyperparameters."""
    return {
        "model": choices.get("model"), "dataset": choices.get("dataset"),
        "optimizer": choices.get("optimizer"), "lr": cfg.optimizer.get("lr"),
        "scheduler": choices.get("scheduler"), "augmentation": choices.get("augmentation"),
        "batch_size": cfg.trainer.batch_size, "epochs": cfg.trainer.epochs,
        "seed": cfg.trainer.seed,
    }


class TrainingRun:
    def __init__(self, cfg: DictConfig, run_dir: Path, choices: Mapping[str, str],
                 console: Console | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.console = console or Console()
        self.settings = TrainerSettings.from_config(
            OmegaConf.to_container(cfg.trainer, resolve=True))
        self.options = run_options(choices, cfg)
        self.evaluation = EvaluationSettings.from_config(  # checked now, not after training
            OmegaConf.to_container(cfg.evaluation, resolve=True) if "evaluation" in cfg else None)
        self.metrics: dict[str, Any] = {
            "status": "starting", **self.options,
            "command": " ".join(sys.argv), "run_dir": str(self.run_dir),
            "versions": {"cnnbench": __version__, "torch": torch.__version__,
                         "python": sys.version.split()[0]},
        }

    # -- outputs -------------------------------------------------------------------------------
    def write_metrics(self, **updates: Any) -> None:
        self.metrics.update(updates)
        write_json_atomic(self.run_dir / "metrics.json", self.metrics)

    def checkpoint_payload(self, fit: Fit, scaler) -> dict[str, Any]:
        return {
            "model": fit.model.state_dict(), "optimizer": fit.optimizer.state_dict(),
            "scheduler": fit.schedule.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "epoch": fit.state.epoch, "best_epoch": fit.state.best_epoch,
            "best_score": fit.state.best_score, "rng": rng_states(),
            "loader": fit.train_loader.state_dict(),
            "config": OmegaConf.to_yaml(self.cfg), "options": dict(self.options),
        }

    # -- the run -------------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        s = self.settings
        self.write_metrics(status="running")
        runtime = make_runtime(s.device, s.amp, s.channels_last)
        seed_everything(s.seed)
        data = load_dataset(**OmegaConf.to_container(self.cfg.dataset, resolve=True))
        data = data.with_validation(s.val_split, s.seed)
        model = build_model(self.cfg, data).to(runtime.device)
        if runtime.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(self.cfg, model)
        augment = instantiate(self.cfg.augmentation, _convert_="all")
        loaders = self.make_loaders(data, runtime, augment)
        factory = (instantiate(self.cfg.scheduler, _convert_="all")
                   if self.cfg.scheduler.get("_target_") else None)
        schedule = build_schedule(factory, optimizer, s.epochs, len(loaders["train"]))
        scaler = torch.amp.GradScaler("cuda") if runtime.needs_scaler else None
        loss_fn = nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
        fit = Fit(model, optimizer, schedule, loss_fn, runtime, loaders["train"], loaders["val"],
                  s.epochs, s.early_stopping, scaler)
        params = count_parameters(model)
        self.write_metrics(params=params, device=runtime.device_name, amp=runtime.amp_name,
                           train_size=len(data.train), val_size=len(data.val) if data.val else 0,
                           test_size=len(data.test), classes=data.classes)
        self.console.print(
            f"[bold]cnnbench[/] {self.options['model']} on {self.options['dataset']} "
            f"({params:,} parameters) | {runtime.device_name}, AMP {runtime.amp_name} | "
            f"{self.run_dir}")
        tb = TensorBoardSink(self.run_dir / "tb")
        tb.text("config", "```\n" + OmegaConf.to_yaml(self.cfg) + "\n```")
        history = HistoryCSV(self.run_dir / "history.csv")
        ckpt_dir = self.run_dir / "checkpoints"
        start = time.perf_counter()
        images_total = 0

        with ConsoleProgress(self.console, enabled=s.progress) as progress:
            progress.start(s.epochs, fit.state.epoch, len(loaders["train"]))

            def on_epoch_end(row: dict, is_best: bool) -> None:
                nonlocal images_total
                images_total += len(data.train)
                history.write(row)
                tb.scalars({k: v for k, v in row.items() if k != "epoch"}, row["epoch"])
                progress.epoch_done(row)
                if is_best and s.checkpoint.save_best:
                    save_checkpoint(ckpt_dir / "best.pt", self.checkpoint_payload(fit, scaler))
                if s.checkpoint.save_last:
                    save_checkpoint(ckpt_dir / "last.pt", self.checkpoint_payload(fit, scaler))
                self.write_metrics(epochs_run=fit.state.epoch, best_epoch=fit.state.best_epoch,
                                   last_epoch_metrics=row)

            try:
                fit.run(on_epoch_end,
                        on_progress=lambda *a: progress.batch(*a),
                        on_epoch_start=lambda e: progress.new_epoch(e, s.epochs))
            except KeyboardInterrupt:
                self.finish_early(fit, scaler, tb, "interrupted", "stopped by the user (Ctrl-C)")
                raise
            except Diverged as err:
                self.finish_early(fit, scaler, tb, "diverged", str(err))
                raise UserError(
                    f"Training diverged in epoch {fit.state.epoch + 1}: {err}. The learning rate "
                    f"(optimizer.lr={self.options['lr']}) is probably too high"
                    + (", or fp16 overflowed (try trainer.amp=bf16 or off)"
                       if runtime.amp_name == "fp16" else "")
                    + f". The last good checkpoint is in {ckpt_dir}.") from None
            except BaseException as err:
                self.finish_early(fit, scaler, tb, "failed", f"{type(err).__name__}: {err}")
                raise

        train_seconds = time.perf_counter() - start
        if s.early_stopping.restore_best:
            fit.restore_best()
        test = evaluate(model, loaders["test"], loss_fn, runtime)
        tb.scalars({"test/loss": test["loss"], "test/acc": test["acc"]}, fit.state.epoch)
        report = evaluate_test_set(
            model, data, runtime, self.evaluation, self.run_dir, batch_size=s.eval_batch_size,
            tb=tb, step=fit.state.epoch, console=self.console,
            title=f"{self.options['model']} on {self.options['dataset']}")
        log_hparams(tb, self.options, self.run_dir, ["test/acc", "test/loss", *report.scalars])
        tb.close()
        self.write_metrics(
            status="completed", **{"test/loss": test["loss"], "test/acc": test["acc"]},
            **report.metrics,
            epochs_run=fit.state.epoch, best_epoch=fit.state.best_epoch,
            stopped_early=fit.state.stopped_early, restored_best=s.early_stopping.restore_best,
            train_seconds=train_seconds,
            images_per_s=images_total / max(train_seconds, 1e-9),
        )
        self.console.print(summary_table(f"{self.options['model']} on {self.options['dataset']}", {
            "test accuracy": test["acc"], "test loss": test["loss"],
            "epochs": f"{fit.state.epoch} (best {fit.state.best_epoch})",
            "train seconds": train_seconds, "images/s": self.metrics["images_per_s"],
            "parameters": f"{params:,}", "device": f"{runtime.device_name} (AMP {runtime.amp_name})",
            "run directory": str(self.run_dir),
        }))
        return self.metrics

    def make_loaders(self, data: ImageData, runtime: Runtime, augment) -> dict:
        s = self.settings
        common = dict(device=runtime.device, mean=data.mean, std=data.std,
                      channels_last=runtime.channels_last)
        train = DeviceLoader(data.train, s.batch_size, shuffle=True, seed=s.seed,
                             augment=augment if augment.active else None, **common)
        evaluate_on = lambda split: DeviceLoader(split, s.eval_batch_size, **common)  # noqa: E731
        return {"train": train, "val": evaluate_on(data.val) if data.val else None,
                "test": evaluate_on(data.test)}

    def finish_early(self, fit: Fit, scaler, tb: TensorBoardSink, status: str, reason: str) -> None:
        """Keep what the run had: last checkpoint (of the last finished epoch), curves, metrics."""
        tb.close()
        self.write_metrics(status=status, reason=reason, epochs_run=fit.state.epoch,
                           best_epoch=fit.state.best_epoch)
