"""trainer.target_acc: stop a run once its accuracy reaches a target, and say how long it took.

The accuracy is checked after every epoch's evaluation: validation accuracy, or test accuracy
when the run holds out no validation split (trainer.val_split=0; the test set is then evaluated
after each epoch for this check only). The time to the target follows the speed-record
convention: the seconds of the epochs' training and evaluation passes, added up to the end of the
epoch that reached it; compiling and capturing the step happen before training and are
`compile_seconds`, apart; checkpoints, curves and the console between epochs are not counted.

A resumed run carries the time and the epoch of the target over from its checkpoint. Once the
target was reached, a resume goes straight to testing, unless it asks for more epochs than the
run had planned then: those epochs train on, and the target (already reached) stops nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VAL_METRIC, TEST_METRIC = "val/acc", "test/acc"



@dataclass
class TargetWatch:
    """The target of one run, the metric it is checked on, and when it was reached."""

    target: float
    metric: str                         # VAL_METRIC or TEST_METRIC
    epochs_to_target: int | None = None
    time_to_target_s: float | None = None
    planned_epochs: int | None = None   # trainer.epochs when the target was reached
    stops: bool = True                  # False: a resume that trains on past the target

    @classmethod
    def of(cls, target_acc: float | None, has_validation: bool) -> TargetWatch | None:
        if target_acc is None:
            return None
        return cls(float(target_acc), VAL_METRIC if has_validation else TEST_METRIC)

    @property
    def reached(self) -> bool:
        return self.epochs_to_target is not None

    def check(self, epoch: int, acc: float, seconds: float, epochs: int) -> bool:
        """Whether `acc` after `epoch` reaches the target for the first time (recorded then);
        `seconds`: the training and evaluation seconds so far; `epochs`: trainer.epochs."""
        if self.reached or acc < self.target:
            return False
        self.epochs_to_target, self.time_to_target_s = epoch, seconds
        self.planned_epochs = epochs
        return True

    def done(self) -> bool:
        """Whether the run is to stop training: the target is reached and still stops it."""
        return self.reached and self.stops

    def metrics(self) -> dict[str, Any]:
        return {"target_acc": self.target, "target_metric": self.metric,
                "time_to_target_s": self.time_to_target_s,
                "epochs_to_target": self.epochs_to_target}

    def reason(self) -> str | None:
        if not self.reached:
            return None
        return (f"reached the target {self.metric} >= {self.target:g} (trainer.target_acc) in "
                f"epoch {self.epochs_to_target}, after {self.time_to_target_s:.2f} s of "
                f"training and evaluation")

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_to_target": self.epochs_to_target,
                "time_to_target_s": self.time_to_target_s,
                "planned_epochs": self.planned_epochs}

    def load_state_dict(self, state: dict[str, Any] | None, epochs: int) -> None:
        """What a checkpoint says of the target; `epochs`: trainer.epochs of the resumed run."""
        state = state or {}
        self.epochs_to_target = state.get("epochs_to_target")
        self.time_to_target_s = state.get("time_to_target_s")
        self.planned_epochs = state.get("planned_epochs")
        self.stops = not self.reached or epochs <= (self.planned_epochs or 0)


def stopped_by_target(checkpoint: dict[str, Any]) -> int | None:
    """The epochs a run had planned when its target stopped it at the checkpoint's epoch (a
    resume that asks for no more than these has nothing to train); None otherwise."""
    state = checkpoint.get("target")
    if not isinstance(state, dict) or state.get("epochs_to_target") is None:
        return None
    planned = state.get("planned_epochs")
    return planned if isinstance(planned, int) and planned > checkpoint.get("epoch", 0) else None


def target_metrics(watch: TargetWatch | None) -> dict[str, Any]:
    """The four metrics.json keys of the target (all null for a run without one)."""
    if watch is None:
        return {"target_acc": None, "target_metric": None, "time_to_target_s": None,
                "epochs_to_target": None}
    return watch.metrics()


def target_summary(watch: TargetWatch | None) -> dict[str, str]:
    """The row of the run's summary table that says how long the target took (none without)."""
    if watch is None:
        return {}
    return {"time to target": (
        f"{watch.time_to_target_s:.2f} s (epoch {watch.epochs_to_target}, {watch.metric} "
        f">= {watch.target:g})" if watch.reached else
        f"not reached ({watch.metric} >= {watch.target:g})")}
