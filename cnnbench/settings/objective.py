"""The number a sweep optimizes: `optimized_metric` names it, and its direction comes with it.

A Hydra task returns one value per job to the sweeper; Optuna minimizes it unless told to
maximize. Each metric here knows whether higher is better, and a sweeper asked to go the other
way is refused before any job runs, so a search cannot pick the worst run as its best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cnnbench.errors import UserError

MAXIMIZE, MINIMIZE = "maximize", "minimize"

# optimized_metric -> (the metrics.json key it reads, the direction that improves it)
METRICS = {
    "val/acc": ("best_val_acc", MAXIMIZE),
    "test/acc": ("test/acc", MAXIMIZE),
    "test/loss": ("test/loss", MINIMIZE),
    "train_seconds": ("train_seconds", MINIMIZE),
    "time_to_target_s": ("time_to_target_s", MINIMIZE),
}


class SweepError(UserError):
    """A mistake in the sweep itself: every job would make it, so the sweep stops at once."""


@dataclass(frozen=True)
class Objective:
    name: str
    key: str
    direction: str

    def value(self, metrics: Mapping[str, Any]) -> float | None:
        value = metrics.get(self.key)
        return float(value) if isinstance(value, (int, float)) else None


def objective_of(name: Any) -> Objective:
    if name not in METRICS:
        raise SweepError(f"optimized_metric={name!r} is not a metric a sweep can optimize. Use "
                         f"one of {', '.join(METRICS)} (e.g. optimized_metric=val/acc).")
    key, direction = METRICS[name]
    return Objective(name, key, direction)


def recorded_value(name: Any, metrics: Mapping[str, Any]) -> float | None:
    """The value of optimized_metric `name` that a run's metrics.json holds: what a completed
    job returns to the sweeper when a sweep run again skips it. None for a metric the run did
    not record, or a name that is not one (the job could not have completed with it)."""
    if name not in METRICS:
        return None
    return objective_of(name).value(metrics)


def check_sweeper(objective: Objective, sweeper: Mapping[str, Any], val_split: float) -> None:
    """Refuse a sweeper that would optimize `objective` the wrong way, or a value no job has."""
    direction = sweeper.get("direction")
    if direction is not None:
        wanted = str(getattr(direction, "name", direction)).lower()
        if isinstance(direction, (list, tuple)) or wanted not in (MAXIMIZE, MINIMIZE):
            raise SweepError(f"hydra.sweeper.direction={direction!r}: cnnbench returns one value "
                             f"per job (optimized_metric={objective.name}), so the direction "
                             f"is one of {MAXIMIZE} or {MINIMIZE}.")
        if wanted != objective.direction:
            better = "higher" if objective.direction == MAXIMIZE else "lower"
            raise SweepError(
                f"The sweeper would {wanted} optimized_metric={objective.name}, which is better "
                f"when {better}: its best trial would be the worst run. Set "
                f"hydra.sweeper.direction={objective.direction}, or optimize another metric "
                f"(optimized_metric=test/loss is minimized).")
    if objective.name == "val/acc" and not val_split:
        raise SweepError("optimized_metric=val/acc needs a validation set, and "
                         "trainer.val_split=0 has none: set trainer.val_split (e.g. 0.1), or "
                         "optimize another metric (optimized_metric=test/acc).")


def check_sweep_objective(args: list[str]) -> None:
    """Before Hydra starts a search (a sweeper other than the basic one, e.g. `hparams_search=`
    or `hydra/sweeper=optuna`): the sweeper optimizes optimized_metric the right way."""
    if not any(a.startswith(("hparams_search=", "hydra/sweeper=", "hydra.sweeper.",
                             "optimized_metric=")) for a in args):
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from cnnbench.settings.config_files import compose_config

    parsed = OverridesParser.create().parse_overrides(
        [a for a in args if "=" in a and not a.startswith("-")])
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    cfg = compose_config(fixed, return_hydra_config=True)
    objective = objective_of(cfg.get("optimized_metric", "val/acc"))
    check_sweeper(objective, cfg.hydra.sweeper, cfg.trainer.val_split)
