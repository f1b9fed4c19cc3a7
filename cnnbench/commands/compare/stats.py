"""The statistics of repeated runs: a mean with its 95% confidence interval, Welch's t-test
between two sets of runs, and a verdict against a published number.

Pure functions of plain numbers (no run directories, no formatting), so that other tools
(bench/reproduce.py) can give the same answers as `cnnbench compare`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

CONFIDENCE = 0.95
NOISE_P = 0.05  # Welch's p at or above this: the difference is within the noise of the seeds

MATCHES, ABOVE, BELOW = "matches", "above", "below"


@dataclass(frozen=True)
class Summary:
    """n values as mean, sample standard deviation (ddof=1) and the 95% confidence interval of
    the mean (Student t). std and the interval are None below two values, mean below one."""
    n: int
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def half_width(self) -> float | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2


def _finite(values: Sequence[float | int | None]) -> list[float]:
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def summarize(values: Sequence[float | int | None], confidence: float = CONFIDENCE) -> Summary:
    """Mean, std (ddof=1) and the Student-t confidence interval of the mean of `values`
    (None, NaN and infinite values are left out)."""
    from scipy import stats

    xs = _finite(values)
    n = len(xs)
    if n == 0:
        return Summary(0)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) between the values `a` and `b`.

    None when no test is possible: fewer than two values on either side, or no spread in
    either (every value of `a` equal and every value of `b` equal: the t statistic is 0/0 or
    infinite, and a p of 0 would claim a certainty that two or three seeds cannot give)."""
    from scipy import stats

    xs, ys = _finite(a), _finite(b)
    if len(xs) < 2 or len(ys) < 2:
        return None
    if max(xs) == min(xs) and max(ys) == min(ys):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nearly equal values lose precision
        p = float(stats.ttest_ind(xs, ys, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def within_noise(p: float | None) -> bool | None:
    """Whether a p-value says the difference is within the noise (None: no test)."""
    return None if p is None else p >= NOISE_P


def verdict(summary: Summary, published: float | None) -> str | None:
    """Where a published number lies against our runs: MATCHES when it lies inside our 95%
    interval, ABOVE when our whole interval lies above it, BELOW when below it.

    None when there is nothing to judge: no published number, or fewer than two runs (a
    single run has no interval; its value alone says nothing about the spread of seeds)."""
    if published is None or summary.ci_low is None or summary.ci_high is None:
        return None
    if summary.ci_low > published:
        return ABOVE
    if summary.ci_high < published:
        return BELOW
    return MATCHES
