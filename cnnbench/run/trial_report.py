"""A search's trial, reported from inside its run: after every epoch the run tells the study its
validation metric and asks the study's pruner whether to go on; a trial the pruner judges
hopeless stops at that epoch's end (RunPruned), keeping what it wrote, and ends `pruned`.

The search (hydra_plugins/cnnbench_search) passes the trial's number to the job as the override
`+search.trial=N`, and the study's name and storage URL in the environment, so that a job in the
search's own process, in a child process or on another machine reaches the same study. The
pruner is the one the search stored with the study, so every worker prunes alike.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig

from cnnbench.errors import RunPruned
from cnnbench.run.study_storage import open_storage, quiet_libraries

STUDY_ENV, STORAGE_ENV = "CNNBENCH_SEARCH_STUDY", "CNNBENCH_SEARCH_STORAGE"
PRUNER_ATTR = "cnnbench.pruner"  # the study's user attribute that holds its pruner's settings
RUN_DIR_ATTR = "run_dir"         # each trial's user attribute: the run directory of its job

# optimized_metric -> the per-epoch metric reported while the trial runs (same direction)
EPOCH_METRICS = {"val/acc": "val/acc", "test/acc": "val/acc", "test/loss": "val/loss"}


def make_pruner(spec: Mapping[str, Any] | None) -> Any:
    """The Optuna pruner that `spec` describes ({"name": "median" | "hyperband" | "none", ...})."""
    import optuna

    spec = dict(spec or {})
    name = spec.get("name", "none")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(spec.get("n_startup_trials", 2)),
                                           n_warmup_steps=int(spec.get("n_warmup_steps", 0)))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=int(spec.get("min_resource", 1)),
            max_resource=int(spec["max_resource"]) if spec.get("max_resource") else "auto",
            reduction_factor=int(spec.get("reduction_factor", 3)))
    return optuna.pruners.NopPruner()


class NoTrial:
    """A run that is not a search's trial: nothing to report."""

    def epoch(self, row: Mapping[str, Any]) -> None:
        pass


class TrialReport:
    def __init__(self, trial: Any, metric: str, pruner: str, study_name: str,
                 last_epoch: int) -> None:
        self.trial, self.metric, self.pruner, self.study_name = trial, metric, pruner, study_name
        self.last_epoch = last_epoch

    def epoch(self, row: Mapping[str, Any]) -> None:
        """Report the epoch's metric; raise RunPruned when the pruner says stop (never after
        the last epoch: the trial has had every epoch, and its test costs less than another's)."""
        value, epoch = row.get(self.metric), int(row["epoch"])
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self.trial.report(float(value), epoch)
        if epoch < self.last_epoch and self.trial.should_prune():
            raise RunPruned(f"pruned by the search's {self.pruner} pruner after epoch {epoch} "
                            f"({self.metric} {value:.4f}): trial {self.trial.number} of study "
                            f"{self.study_name} did worse than the other trials at that epoch.")


def trial_report_of(cfg: DictConfig, run_dir: Path, is_main: bool) -> TrialReport | NoTrial:
    """The report of the search's trial this run is (NoTrial when it is none, in a process other
    than the first of a distributed run, or when the trial has ended already)."""
    search = cfg.get("search")
    number = search.get("trial") if isinstance(search, Mapping) else None
    study_name, url = os.environ.get(STUDY_ENV), os.environ.get(STORAGE_ENV)
    if number is None or not (study_name and url and is_main):
        return NoTrial()
    with quiet_libraries():  # importing Optuna logs the set-up of Alembic's plugins
        import optuna

    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    spec = study.user_attrs.get(PRUNER_ATTR) or {}
    study.pruner = make_pruner(spec)
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, int(number))
    if study._storage.get_trial(trial_id).state.is_finished():
        return NoTrial()
    trial = optuna.trial.Trial(study, trial_id)
    trial.set_user_attr(RUN_DIR_ATTR, str(Path(run_dir).resolve()))
    name = str(cfg.get("optimized_metric", "val/acc"))
    return TrialReport(trial, EPOCH_METRICS.get(name, name), spec.get("name", "none"), study_name,
                       int(cfg.trainer.epochs))
