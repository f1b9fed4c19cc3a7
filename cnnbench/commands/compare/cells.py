"""The text of the cells of the group table: numbers with their spread, Welch's p against the
best group, the verdict against a published number, time to target, energy. An empty string
wherever there is nothing to show (never a 0 or NaN standing in for a missing value)."""
from __future__ import annotations

import math
from typing import Any, Sequence

from cnnbench.commands.compare.group_stats import GroupStats
from cnnbench.commands.compare.runs import RunRecord
from cnnbench.commands.compare.stats import NOISE_P, Summary

WITHIN_NOISE = "within noise"


def pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else ""


def num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) else ""


def p_text(p: float) -> str:
    """p to two decimals, three below 0.1, '<0.001' below that; truncated, not rounded, so
    that a p shown as 0.05 is never one below 0.05."""
    if p < 0.001:
        return "p<0.001"
    digits = 3 if p < 0.1 else 2
    return f"p={math.floor(p * 10 ** digits) / 10 ** digits:.{digits}f}"


def vs_best(stats: GroupStats, best: GroupStats | None) -> str:
    """'best', 'p=0.43 (within noise)', 'p=0.002', or why no test is possible."""
    if stats.best:
        return "best"
    if best is None or stats.acc.n == 0:
        return ""
    if stats.p_best is not None:
        return p_text(stats.p_best) + (f" ({WITHIN_NOISE})" if stats.p_best >= NOISE_P else "")
    if stats.acc.n < 2:
        return f"n={stats.acc.n}: no test"
    if best.acc.n < 2:
        return f"best has n={best.acc.n}: no test"
    return "no spread in either: no test"


def ci_pct(summary: Summary) -> str:
    """'97.52–98.48' (percent, shown within 0–100: an accuracy cannot leave it, though the
    Student-t interval of a few spread-out seeds can; the CSV keeps the interval as computed);
    empty below two values."""
    if summary.ci_low is None or summary.ci_high is None:
        return ""
    return f"{max(0.0, 100 * summary.ci_low):.2f}–{min(100.0, 100 * summary.ci_high):.2f}"


def std_pts(summary: Summary) -> str:
    return "" if summary.std is None else f"{100 * summary.std:.2f}"


def _secs(value: float, like: float) -> str:
    return f"{value:,.1f}" if abs(like) >= 1 else f"{value:.3f}"


def seconds(summary: Summary, spread: str = "std") -> str:
    """'12.5 ± 0.3' (± the std, or the CI95 half-width with spread='ci'); '12.5' for one run."""
    if summary.mean is None:
        return ""
    width = summary.std if spread == "std" else summary.half_width
    if width is None:
        return _secs(summary.mean, summary.mean)
    return f"{_secs(summary.mean, summary.mean)} ± {_secs(width, summary.mean)}"


def _metric_value(value: float, metric: str) -> str:
    return f"{value:.4g}" if "loss" in metric else pct(value)


def published(stats: GroupStats) -> str:
    pub = stats.published
    if not pub:
        return ""
    metric = pub["metric"]
    return _metric_value(pub["value"], metric) + ("" if metric == "test/acc" else f" {metric}")


def verdict(stats: GroupStats) -> str:
    """matches / above / below, or why there is none (a single run has no interval)."""
    if not stats.published or stats.acc.n == 0:
        return ""
    if stats.verdict is not None:
        return stats.verdict
    ours = stats.published_summary
    if ours is None or ours.n == 0:
        return f"no {stats.published['metric']} in the runs"
    return f"n={ours.n}: no interval"


def to_target(stats: GroupStats, with_goal: bool = False) -> str:
    """'3.1 ± 0.4 s (3/3)': mean ± CI95 half-width over the runs that reached the target, and
    how many of the runs that tracked it did."""
    t = stats.target
    if t is None:
        return ""
    goal = f", {' / '.join(t.goals)}" if with_goal and t.goals else ""
    if t.reached == 0:
        return f"not reached (0/{t.tracked}{goal})"
    return f"{seconds(t.seconds, spread='ci')} s ({t.reached}/{t.tracked}{goal})"


def energy(stats: GroupStats) -> tuple[str, str]:
    """(mean joules per run, mean joules per point of test accuracy); empty when unmeasured."""
    e = stats.energy
    if e is None or e.measured == 0:
        return "", ""
    share = "" if e.measured == stats.acc.n else f" ({e.measured}/{stats.acc.n})"
    return f"{e.joules.mean:,.0f}{share}", num(e.per_point.mean, ",.1f")


def left_out(runs: Sequence[RunRecord]) -> str:
    """'failed (seed 4), running (seed 5)'; 'completed, no test acc' for a run without one,
    'completed, test/loss not finite' for one with a metric that is NaN or infinite,
    'completed, test/acc out of range' for one outside its range, 'completed, repeated seed'
    for one that repeats the seed of another run of its group."""
    parts = []
    for r in runs:
        why = ("completed, repeated seed" if r.repeats else
               r.shown_status if r.status != "completed" or r.invalid else "completed, no test acc")
        seed = r.options.get("seed")
        parts.append(f"{why} (seed {seed})" if seed is not None else why)
    return ", ".join(parts)
