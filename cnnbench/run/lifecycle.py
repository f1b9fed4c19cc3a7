"""One training run, from a composed config to the files in its run directory.

config -> Data -> Loaders (on the device) -> Model -> Optimizer / Schedule -> Fit -> test metrics.
Whatever happens (completion, Ctrl-C, divergence, an error), the run directory keeps the config,
the curves so far, the last checkpoint and a metrics.json whose `status` says how it ended.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from cnnbench import rundir
from cnnbench.data.preprocessing import Preprocessing
from cnnbench.endings import ending_of
from cnnbench.engine.distributed import all_reduce_sum, from_environment, unwrap
from cnnbench.engine.finite import NotFinite
from cnnbench.engine.loop import Fit, evaluate
from cnnbench.engine.stops import AgreedStops
from cnnbench.engine.target import TEST_METRIC, target_metrics
from cnnbench.errors import RunDiverged
from cnnbench.evaluation.evaluate import evaluate_test_set
from cnnbench.run.build import Parts, assemble
from cnnbench.run.checkpoint import load_checkpoint, save_checkpoint
from cnnbench.run.config_checks import check_config
from cnnbench.run.divergence import divergence_advice, require_finite_checkpoint
from cnnbench.run.energy import EnergyMeter, across_processes
from cnnbench.run.hparams import end_tensorboard, log_hparams
from cnnbench.run.job import distributed_block, job_words
from cnnbench.run.provenance import NullSink, code_commit, library_versions, run_options
from cnnbench.run.published import published_block
from cnnbench.run.sinks import StepLoss, open_sinks
from cnnbench.run.state import check_compatible, fit_payload, restore_fit
from cnnbench.run.summary import print_start, print_summary
from cnnbench.run.trackers import Trackers, open_trackers, require_packages
from cnnbench.run.trial_report import trial_report_of
from cnnbench.rundir import RunLock, RunRecord
from cnnbench.settings.evaluation import EvaluationSettings
from cnnbench.terminal import EpochProgress


class TrainingRun:
    def __init__(self, cfg: DictConfig, run_dir: Path, choices: Mapping[str, str],
                 console: Console | None = None, brief: bool = False,
                 started: float | None = None) -> None:
        self.cfg = cfg
        self.started = time.perf_counter() if started is None else started  # see jobclock.py
        self.brief = brief  # a sweep's job: one line at the end, the sweep prints the table
        self.run_dir = Path(run_dir)
        self.dist = from_environment()
        self.console = console or Console()
        self.console.quiet = self.console.quiet or not self.dist.is_main  # rank 0 prints
        require_packages(cfg)  # a chosen logger's package is there before anything starts
        checked = check_config(cfg)  # every setting now, evaluation's too, not after training
        self.settings = checked.trainer
        self.options = run_options(choices, cfg)
        self.evaluation = replace(checked.evaluation, table=False) if brief else checked.evaluation
        # a resumed run's metrics.json as it was, read before this part's first write replaces it
        self.previous = rundir.read_metrics(self.run_dir) if self.settings.resume else {}
        self.record = RunRecord(self.run_dir, {
            "status": rundir.STARTING, **self.options,
            "command": " ".join(sys.argv), "run_dir": str(self.run_dir),
            "config_hash": rundir.read_config_hash(self.run_dir),
            "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "versions": library_versions(), "git": code_commit(),
            "published": published_block(cfg.get("published")),
        }, writer=self.dist.is_main)
        self.parts: Parts | None = None
        self.train_start: float | None = None  # while epochs run
        self.earlier_train_seconds = 0.0       # training before (earlier parts of a resumed run)
        self.earlier_energy: float | None = 0.0  # joules of the earlier parts (None: unknown)
        self.energy: EnergyMeter | None = None  # while epochs run
        self.tb: Any = NullSink()
        self.trackers = Trackers([], self.console)  # MLflow, W&B: opened when the run starts
        self.kept_epoch: int | None = None  # the epoch of the last.pt this part wrote

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics

    def write_metrics(self, **updates: Any) -> None:
        self.record.update(**updates)

    def checkpoint_payload(self, fit: Fit, scaler) -> dict[str, Any]:
        return {
            **fit_payload(fit, scaler),
            "config": OmegaConf.to_yaml(self.cfg), "options": dict(self.options),
            "data": Preprocessing.from_data(self.parts.data).to_dict(),  # predict, export
            "pretrained": self.parts.pretrained,  # where the starting weights came from
            "train_seconds": self.train_seconds(),
            "energy_joules": (self.energy.read() if self.energy is not None
                              else self.earlier_energy),
        }

    def train_seconds(self) -> float:
        """Seconds spent training, over every part of a resumed run."""
        start = self.train_start
        return self.earlier_train_seconds + (time.perf_counter() - start if start else 0.0)

    # -- the run: a lifecycle whose every ending leaves a final status ---------------------------
    def execute(self) -> dict[str, Any]:
        lock = RunLock(self.run_dir)
        if self.dist.is_main:
            lock.acquire()
        try:  # under torchrun, a stop signal stops every process at the same step
            with AgreedStops(self.dist) as stops:
                self.record.update(status=rundir.RUNNING, seed=self.settings.seed, pid=os.getpid(),
                                   deterministic=self.settings.deterministic)
                self.trackers = open_trackers(self.cfg, self.options, self.metrics, self.run_dir,
                                              self.console, self.dist.is_main)
                parts = self.parts = self.build()
                self.trial = trial_report_of(self.cfg, self.run_dir, self.dist.is_main)
                parts.fit.train_loader = stops.checked(parts.fit.train_loader)
                train_seconds = self.train(parts)
                stops.check()
                self.test(parts, train_seconds)
        except BaseException as err:
            self.end(err)
            raise
        finally:
            lock.release()
        return self.metrics

    def end(self, err: BaseException) -> None:
        """Keep what the run had and say how it ended: curves, metrics and last.pt (the snapshot
        of the last finished epoch, so a resume is exact; before the first epoch ends, the model
        as it was then, marked epoch 0; a diverged run's last good one; none without a model)."""
        ending = ending_of(err)
        end_tensorboard(self.tb, ending.status, self.options, self.run_dir)  # a pruned trial's row
        parts = self.parts
        extra: dict[str, Any] = {}
        if parts is not None:
            last = rundir.last_checkpoint(self.run_dir)
            if (ending.status != rundir.DIVERGED and self.settings.checkpoint.save_last
                    and not last.exists()):
                try:
                    self.save(last, parts.fit, parts.scaler)
                except Exception:  # noqa: BLE001 (e.g. the disk is full: the status matters more)
                    pass
            # the epochs last.pt holds, which a resume continues from: an interruption between an
            # epoch's end and its last.pt must not claim that epoch
            kept = parts.fit.state.epoch if self.kept_epoch is None else self.kept_epoch
            extra = {"epochs_run": kept, "best_epoch": parts.fit.state.best_epoch}
        self.record.finish(ending.status, ending.reason, exit_code=ending.exit_code, **extra)
        self.trackers.finish(self.metrics, ending.status, self.run_dir)

    def build(self) -> Parts:
        s = self.settings
        resume = load_checkpoint(Path(s.resume)) if s.resume else None
        if resume is not None:
            check_compatible(resume, self.options, s.resume, self.cfg.model)
        self.record.phase("setup")
        parts = assemble(self.cfg, s, self.dist, model_name=self.options["model"],
                         note=self.note, phase=self.record.phase, resuming=resume is not None,
                         lr_found=self.previous.get("lr_find"))
        if resume is not None:  # back exactly where the checkpoint left it
            restore_fit(resume, parts.fit, parts.scaler, self.run_dir, s, self.dist)
            self.earlier_train_seconds = float(resume.get("train_seconds") or 0.0)
            self.earlier_energy = resume.get("energy_joules") if parts.fit.state.epoch else 0.0
            self.metrics["best_val_acc"] = self.previous.get("best_val_acc")
            parts.resumed_at = parts.fit.state.epoch
            parts.pretrained = resume.get("pretrained")  # the weights the run started from
        runtime, data = parts.runtime, parts.data
        known = {"effective_lr": parts.effective_lr, "pretrained": parts.pretrained}
        self.write_metrics(**{k: v for k, v in known.items() if v is not None},
                           params=parts.params, device=runtime.device_name, amp=runtime.amp_name,
                           cpu_threads=runtime.threads, world_size=self.dist.world_size,
                           distributed=distributed_block(self.dist, self.run_dir),
                           sync_batchnorm=parts.sync_batchnorm, train_size=len(data.train),
                           val_size=len(data.val) if data.val else 0, test_size=len(data.test),
                           classes=data.classes, compile_seconds=parts.compile_seconds,
                           data_path=parts.data_path, cuda_graph=parts.graphs.status,
                           startup_seconds=time.perf_counter() - self.started
                           - parts.compile_seconds, **target_metrics(parts.fit.target))
        self.record.lr_found(parts.lr_find)
        return parts

    def note(self, text: str, kind: str = "note") -> None:
        self.console.print(f"[bold yellow]{kind}:[/] {escape(text)}", highlight=False)

    def train(self, parts: Parts) -> float:
        """The epochs, with curves, checkpoints and metrics written as each one ends."""
        s, fit = self.settings, parts.fit
        print_start(self.console, self.options, parts, self.run_dir, s,
                    job_words(self.metrics.get("distributed")))
        self.tb, history = open_sinks(self.run_dir, OmegaConf.to_yaml(self.cfg), parts.resumed_at,
                                      self.dist.is_main, self.trackers.tensorboard)
        ckpt_dir = self.run_dir / rundir.CHECKPOINT_DIR
        if fit.target is not None and fit.target.metric == TEST_METRIC:
            self.note(f"trainer.target_acc={fit.target.target:g} is checked on the test set "
                      f"(test/acc after every epoch): trainer.val_split=0 leaves no validation "
                      f"split.")
        self.record.phase("training")
        self.energy = EnergyMeter(parts.runtime.device, self.earlier_energy)
        self.energy.start()
        self.train_start = time.perf_counter()
        step_loss = StepLoss(self.tb, len(parts.loaders["train"]))
        with EpochProgress(self.console, enabled=s.progress) as progress:
            progress.start(s.epochs, len(parts.loaders["train"]), parts.runtime.device_name)

            def on_progress(*report: float) -> None:
                step_loss.batch(*report)
                progress.batch(*report)

            def on_epoch_start(epoch: int) -> None:
                if epoch > s.epochs - s.plain_last_epochs:
                    parts.loaders["train"].set_augment(None)
                progress.new_epoch(epoch)
                step_loss.new_epoch(epoch)

            def on_epoch_end(row: dict, is_best: bool) -> None:
                history.write(row)
                self.trackers.epoch(row)
                self.tb.scalars({k: v for k, v in row.items() if k != "epoch"}, row["epoch"])
                progress.epoch_done(row, is_best)
                if is_best and s.checkpoint.save_best:
                    self.save(ckpt_dir / rundir.BEST_CHECKPOINT, fit, parts.scaler)
                if s.checkpoint.save_last:
                    self.save(ckpt_dir / rundir.LAST_CHECKPOINT, fit, parts.scaler)
                val_accs = [self.metrics.get("best_val_acc"), row["val/acc"]]
                self.write_metrics(epochs_run=fit.state.epoch, best_epoch=fit.state.best_epoch,
                                   best_val_acc=max((a for a in val_accs if a is not None),
                                                    default=None),
                                   last_epoch_metrics=row, **target_metrics(fit.target))
                if fit.target is not None and fit.target.epochs_to_target == row["epoch"]:
                    self.console.print(f"[bold green]target:[/] {fit.target.reason()}")
                self.trial.epoch(row)  # a search's pruner may stop the run here (RunPruned)

            try:
                fit.run(on_epoch_end, on_progress=on_progress, on_epoch_start=on_epoch_start)
            except NotFinite as err:
                raise self.diverged(err, f"in epoch {fit.state.epoch + 1}") from None
        self.earlier_train_seconds, self.train_start = self.train_seconds(), None
        joules, note = across_processes(self.energy.stop(), self.dist.world_size,
                                        all_reduce_sum, parts.runtime.device)
        self.write_metrics(energy_joules=joules, energy_note=note)
        return self.earlier_train_seconds

    def diverged(self, err: NotFinite, where: str) -> RunDiverged:
        """The run's ending when a number stopped being finite `where` ('in epoch 3')."""
        return RunDiverged(divergence_advice(err, where, self.options["lr"],
                                             self.parts.runtime.amp_name, self.run_dir))

    def test(self, parts: Parts, train_seconds: float) -> None:
        """Test metrics of the final weights, pictures, hparams, the summary; then `completed`."""
        s, fit, runtime, data = self.settings, parts.fit, parts.runtime, parts.data
        self.record.phase("testing")
        fit.final_weights(s.early_stopping.restore_best)
        model = unwrap(parts.model)  # every process evaluates the whole test set; rank 0 reports
        try:
            report = evaluate_test_set(  # one pass: test loss, accuracy and every metric
                model, data, runtime, self.evaluation if self.dist.is_main else
                EvaluationSettings(enabled=False), self.run_dir, batch_size=s.eval_batch_size,
                loss_fn=fit.loss_fn, tb=self.tb, step=fit.state.epoch, console=self.console,
                title=f"{self.options['model']} on {self.options['dataset']}")
        except NotFinite as err:
            raise self.diverged(err, "when its final weights were tested") from None
        test = {"loss": report.metrics["test/loss"], "acc": report.metrics["test/acc"]}
        if s.tta_flip:
            acc_tta = evaluate(model, parts.loaders["test"], fit.loss_fn, runtime,
                               tta_flip=True)["acc"]
            self.write_metrics(**{"test/acc_tta": acc_tta})
        if self.dist.is_main:
            log_hparams(self.tb, self.options, self.run_dir,
                        ["test/acc", "test/loss", *report.scalars])
        self.tb.close()
        images = len(data.train) * fit.state.epoch  # over every part of a resumed run
        self.record.finish(
            rundir.COMPLETED, fit.target.reason() if fit.target is not None else None,
            **report.metrics, **target_metrics(fit.target),
            epochs_run=fit.state.epoch, best_epoch=fit.state.best_epoch,
            stopped_early=fit.state.stopped_early, restored_best=s.early_stopping.restore_best,
            train_seconds=train_seconds,
            images_per_s=images / max(train_seconds, 1e-9),
            resumed_from_epoch=parts.resumed_at,
        )
        self.trackers.finish(self.metrics, rundir.COMPLETED, self.run_dir)
        print_summary(self.console, f"{self.options['model']} on {self.options['dataset']}",
                      parts, test, train_seconds, self.metrics, self.run_dir, self.brief)

    def save(self, path: Path, fit: Fit, scaler) -> None:
        """Write a checkpoint of the fit; raises NotFinite, writing nothing, when its weights
        are NaN or infinite (a checkpoint is always one a run can go back to)."""
        if self.dist.is_main:
            payload = self.checkpoint_payload(fit, scaler)
            require_finite_checkpoint(payload, path)
            save_checkpoint(path, payload)
        if path == rundir.last_checkpoint(self.run_dir):
            self.kept_epoch = fit.state.epoch
