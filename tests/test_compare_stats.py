"""The statistics of `cnnbench compare`: checked against values computed by hand (Student t
tables, Welch-Satterthwaite, the t density integrated here), not against scipy itself."""
from __future__ import annotations

import math

import pytest

from cnnbench.commands.compare.cells import p_text, vs_best
from cnnbench.commands.compare.group_stats import GroupStats
from cnnbench.commands.compare.stats import Summary, summarize, verdict, welch_p

T_975_DF2 = 4.302652729911275  # Student t, 97.5th percentile, 2 degrees of freedom (tables: 4.303)


def test_summary_of_three_values():
    s = summarize([0.97, 0.98, 0.99])
    assert s.n == 3
    assert s.mean == pytest.approx(0.98, abs=1e-12)
    assert s.std == pytest.approx(0.01, abs=1e-12)  # ddof=1
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert s.ci_low == pytest.approx(0.98 - half, abs=1e-9)
    assert s.ci_high == pytest.approx(0.98 + half, abs=1e-9)
    assert s.half_width == pytest.approx(half, abs=1e-9)


def test_one_value_has_no_spread_and_none_no_mean():
    assert summarize([0.98]) == Summary(1, 0.98, None, None, None)
    assert summarize([]) == Summary(0)
    assert summarize([None, float("nan"), float("inf")]) == Summary(0)
    assert summarize([0.5, None, float("nan"), 0.7]).n == 2  # only numbers count
    # std 0.1·√2, t(0.975, 1) = 12.7062: half width 12.7062 · 0.1·√2 / √2
    assert summarize([0.5, 0.7]).ci_low == pytest.approx(0.6 - 12.706204736 * 0.1, abs=1e-8)


def _t_density(x: float, df: float) -> float:
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    return c * (1 + x * x / df) ** (-(df + 1) / 2)


def _two_sided_p(t: float, df: float, steps: int = 4000) -> float:
    """1 - 2 * the integral of the t density from 0 to |t| (Simpson's rule)."""
    h = abs(t) / steps
    total = _t_density(0, df) + _t_density(abs(t), df)
    total += sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, steps))
    return 1 - 2 * total * h / 3


def test_welch_p_textbook_example():
    # t.test(1:3, 4:6) in R: t = -3.6742, df = 4, p-value = 0.02131
    t = -3 / math.sqrt(1 / 3 + 1 / 3)
    u = 1 + t * t / 4  # the t distribution with 4 degrees of freedom in closed form
    cdf = 0.5 + 3 / 8 * (abs(t) / math.sqrt(u)) * (1 - t * t / (12 * u))
    assert welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(2 * (1 - cdf), rel=1e-9)
    assert welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.02131, abs=5e-6)


def test_welch_p_with_unequal_variances():
    a, b = [0.97, 0.98, 0.99], [0.93, 0.99, 0.95, 0.91]
    va, vb = 0.01 ** 2, sum((x - 0.945) ** 2 for x in b) / 3
    se2 = va / 3 + vb / 4
    t = (0.98 - 0.945) / math.sqrt(se2)
    df = se2 ** 2 / ((va / 3) ** 2 / 2 + (vb / 4) ** 2 / 3)  # Welch-Satterthwaite
    assert 3 < df < 5  # not the pooled 5: the test does not assume equal variances
    assert welch_p(a, b) == pytest.approx(_two_sided_p(t, df), abs=1e-7)
    assert welch_p(b, a) == pytest.approx(welch_p(a, b))


def test_welch_p_needs_two_values_on_each_side_and_some_spread():
    assert welch_p([0.98], [0.97, 0.99]) is None
    assert welch_p([0.97, 0.99], [0.98]) is None
    assert welch_p([0.98, 0.98], [0.97, 0.97]) is None  # 0 variance on both sides: no test
    assert welch_p([0.98, 0.98], [0.97, 0.99]) == pytest.approx(1.0)
    assert welch_p([0.98, 0.98, None], [0.97, 0.96]) is not None


@pytest.mark.parametrize("published,expected", [
    (0.98, "matches"), (0.95, "above"), (1.01, "below"),  # CI95: 0.98 ± 0.0248
    (0.98 - T_975_DF2 * 0.01 / math.sqrt(3) + 1e-9, "matches"),
    (0.98 - T_975_DF2 * 0.01 / math.sqrt(3) - 1e-9, "above"),
    (0.98 + T_975_DF2 * 0.01 / math.sqrt(3) + 1e-9, "below"), (None, None)])
def test_verdict_against_the_interval(published, expected):
    assert verdict(summarize([0.97, 0.98, 0.99]), published) == expected


def test_no_verdict_for_a_single_run():
    assert verdict(summarize([0.99]), 0.98) is None
    assert verdict(summarize([]), 0.98) is None


def test_p_is_truncated_so_that_its_text_never_crosses_the_noise_line():
    assert p_text(0.4321) == "p=0.43"
    assert p_text(0.0499) == "p=0.049"
    assert p_text(0.0021) == "p=0.002"
    assert p_text(0.00004) == "p<0.001"


def _stats(values, best=False, p=None):
    return GroupStats(values, summarize(values), summarize([]), best=best, p_best=p)


def test_vs_best_says_why_there_is_no_test():
    best = _stats([0.98, 0.99], best=True)
    assert vs_best(best, best) == "best"
    assert vs_best(_stats([0.97, 0.98], p=0.43), best) == "p=0.43 (within noise)"
    assert vs_best(_stats([0.90, 0.91], p=0.002), best) == "p=0.002"
    assert vs_best(_stats([0.97]), best) == "n=1: no test"
    assert vs_best(_stats([0.97, 0.98]), _stats([0.99], best=True)) == "best has n=1: no test"
    assert vs_best(_stats([0.97, 0.97]), _stats([0.98, 0.98], best=True)).endswith("no test")
    assert vs_best(_stats([]), best) == ""
