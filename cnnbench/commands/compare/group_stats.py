"""The numbers of one group of runs (the runs of one experiment that differ only in their
seed): test accuracy and training time as mean, std and 95% interval, the means of the other
metrics, the published number and its verdict, time to target, energy. Only the runs that
completed with a test accuracy count (RunRecord.in_statistics).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from cnnbench.commands.compare.runs import RunRecord
from cnnbench.commands.compare.stats import Summary, summarize, verdict, welch_p

MEAN_KEYS = ("test/loss", "test/top5", "test/macro_f1", "params", "images_per_s")


@dataclass(frozen=True)
class Target:
    """Time to a target accuracy over the runs that recorded it (reached or not)."""
    tracked: int                 # runs that wrote time_to_target_s (None: never reached)
    reached: int
    seconds: Summary             # over the runs that reached it
    epochs: Summary
    goals: tuple[str, ...]       # "val/acc ≥ 98.00%": what the runs aimed at


@dataclass(frozen=True)
class Energy:
    measured: int                # runs with a number of joules
    joules: Summary
    per_point: Summary           # joules per point of test accuracy (joules / (100 * acc))
    notes: tuple[str, ...]       # why the others have none (energy_note)


@dataclass
class GroupStats:
    values: list[float]                        # the test accuracies in the statistics
    acc: Summary
    seconds: Summary
    means: dict[str, float] = field(default_factory=dict)  # other metrics, mean over the runs
    best: bool = False
    p_best: float | None = None                # Welch's p against the best group
    published: dict[str, Any] | None = None    # {"value", "metric", "source"}
    published_summary: Summary | None = None   # ours, in the published metric
    verdict: str | None = None                 # matches / above / below (n >= 2 only)
    target: Target | None = None
    energy: Energy | None = None


def _values(runs: Sequence[RunRecord], key: str) -> list[Any]:
    return [r.metrics.get(key) for r in runs]


def _target(runs: Sequence[RunRecord]) -> Target | None:
    # runs that had a target (every run writes the keys; without trainer.target_acc they are null)
    tracked = [r for r in runs if "time_to_target_s" in r.extras
               and (r.extras.get("target_acc") is not None
                    or r.extras["time_to_target_s"] is not None)]
    if not tracked:
        return None
    hit = [r for r in tracked if r.extras["time_to_target_s"] is not None]
    goals = []
    for r in tracked:
        metric, acc = r.extras.get("target_metric"), r.extras.get("target_acc")
        if acc is not None:
            goals.append(f"{metric or 'accuracy'} ≥ {100 * acc:.2f}%")
    return Target(len(tracked), len(hit),
                  summarize([r.extras["time_to_target_s"] for r in hit]),
                  summarize([r.extras.get("epochs_to_target") for r in hit]),
                  tuple(dict.fromkeys(goals)))


def _energy(runs: Sequence[RunRecord]) -> Energy | None:
    measured = [r for r in runs if r.extras.get("energy_joules") is not None]
    notes = tuple(dict.fromkeys(r.extras["energy_note"] for r in runs
                                if r.extras.get("energy_joules") is None
                                and r.extras.get("energy_note")))
    if not measured and not notes:
        return None
    per_point = [r.extras["energy_joules"] / (100 * r.acc) for r in measured if r.acc]
    return Energy(len(measured), summarize([r.extras["energy_joules"] for r in measured]),
                  summarize(per_point), notes)


def _published(runs: Sequence[RunRecord]) -> dict[str, Any] | None:
    """The group's published number: the first run's that has one (one preset, one number)."""
    return next((r.extras["published"] for r in runs if r.extras.get("published")), None)


def describe(runs: Sequence[RunRecord]) -> GroupStats:
    """The numbers of one group, from the runs of it that are in the statistics."""
    used = [r for r in runs if r.in_statistics]
    values = [float(r.acc) for r in used]
    stats = GroupStats(values, summarize(values), summarize(_values(used, "train_seconds")))
    for key in (*MEAN_KEYS, *sorted({k for r in used for k in r.metrics
                                     if k.startswith("shift/")})):
        present = [v for v in _values(used, key) if v is not None and math.isfinite(v)]
        if present:
            stats.means[key] = math.fsum(present) / len(present)
    stats.published = _published(runs)
    if stats.published:
        stats.published_summary = summarize(_values(used, stats.published["metric"]))
        stats.verdict = verdict(stats.published_summary, stats.published["value"])
    stats.target = _target(used)
    stats.energy = _energy(used)
    return stats


def against_best(groups: Sequence[GroupStats]) -> None:
    """Mark the best group (highest mean test accuracy; the first of equals) and give every
    other group Welch's p against it (None where either side has fewer than two runs)."""
    scored = [g for g in groups if g.acc.mean is not None]
    if not scored:
        return
    best = max(scored, key=lambda g: g.acc.mean)  # max keeps the first of equal means
    best.best = True
    for g in scored:
        if g is not best:
            g.p_best = welch_p(g.values, best.values)
