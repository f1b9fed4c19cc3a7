"""comparison.png: test accuracy against training time, one point per group of seeds with the
95% confidence interval of its mean as an error bar and each run as a small dot."""
from __future__ import annotations

import math
import textwrap
from typing import Mapping, Sequence

from matplotlib.figure import Figure

from cnnbench.commands.compare.abbrev import legend
from cnnbench.commands.compare.group_table import setting_keys, short_names
from cnnbench.commands.compare.groups import Group, seed_list
from cnnbench.commands.compare.runs import RunRecord


def colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


LABEL_WIDTH = 48  # characters per line of a label in a picture's legend


def literal(text: str) -> str:
    """Text from the runs' files drawn as it is: a '$' is a dollar sign, never the start of
    matplotlib's math (where `$\\frac{$` would stop the drawing)."""
    return text.replace("$", r"\$")


def names_title(groups: Sequence[Group]) -> str | None:
    """The legend's title: what the short names stand for (None when none is short)."""
    names = legend(short_names(groups), setting_keys(groups))
    return literal("\n".join(textwrap.wrap(names, 2 * LABEL_WIDTH))) if names else None


def picture_label(group: Group, short: Mapping[str, str]) -> str:
    """The group's label with the settings' short names, wrapped between settings onto lines
    of LABEL_WIDTH characters: never cut, so that labels differing anywhere stay distinct."""
    full = ", ".join(f"{k}={v}" for k, v in group.settings.items())
    text = group.label
    if full and text.startswith(full):
        text = ", ".join(f"{short.get(k, k)}={v}" for k, v in group.settings.items()) \
            + text[len(full):]
    return "\n".join(textwrap.wrap(text, LABEL_WIDTH, break_long_words=False,
                                   break_on_hyphens=False)) or text


def group_legend(group: Group, runs: Sequence[RunRecord],
                 short: Mapping[str, str] | None = None) -> str:
    """'model=lenet (n=3, seeds 1–3)'; 'model=lenet (1 run, seed 1)': the runs drawn."""
    seeds = seed_list([r.options.get("seed") for r in runs])
    what = f"n={len(runs)}, seeds {seeds}" if len(runs) > 1 else f"1 run, seed {seeds}"
    return literal(f"{picture_label(group, short or {})} ({what})")


def _timed(group: Group) -> list[RunRecord]:
    return [r for r in group.used if r.metrics.get("train_seconds") is not None]


def accuracy_vs_time_figure(groups: Sequence[Group]) -> Figure | None:
    """Mean test accuracy (y, with its CI95 as a bar) against mean training seconds (x) per
    group; marker area grows with the parameter count; the runs of a group as small dots.
    Markers carry the group's number and the legend, below the axes, says what each number is:
    labels never pile up, however many groups there are."""
    points = [g for g in groups if g.stats.acc.mean is not None and _timed(g)]
    if not points:
        return None
    biggest = max(g.stats.means.get("params", 1) or 1 for g in points)
    crowd = min(1.0, math.sqrt(8 / len(points)))  # many groups: smaller markers
    size = lambda p: crowd * (60 + 900 * math.sqrt(max(p, 1) / biggest))  # noqa: E731 (area)
    columns = 1 if len(points) <= 8 else 2
    short, title = short_names(groups), names_title(groups)
    labels = [group_legend(g, g.used, short) for g in points]
    lines = sum(label.count("\n") + 1 for label in labels) + (title or "").count("\n") \
        + (1 if title else 0)
    legend_inches = 0.18 * -(-lines // columns) + 0.3
    fig = Figure(figsize=(9 + 3 * (columns - 1), 5.5 + legend_inches))
    ax = fig.add_subplot()
    for number, (g, color) in enumerate(zip(points, colors(len(points))), 1):
        s, timed = g.stats, _timed(g)
        x, y = s.seconds.mean, 100 * s.acc.mean
        params = s.means.get("params")
        if s.acc.half_width is not None:
            ax.errorbar([x], [y], yerr=[100 * s.acc.half_width], color=color, capsize=6,
                        elinewidth=1.6, capthick=1.6, zorder=2)
        ax.scatter([r.metrics["train_seconds"] for r in timed], [100 * r.acc for r in timed],
                   s=14, color=color, alpha=0.6, zorder=4, linewidths=0)
        label = f"{number}: " + labels[number - 1] + (
            f", {params:,.0f} params" if params else "")
        ax.scatter([x], [y], s=size(params or 1), color=color, alpha=0.55, edgecolors="black",
                   linewidths=0.8, zorder=3, label=label)
        ax.annotate(str(number), (x, y), ha="center", va="center", fontsize=8,
                    fontweight="bold", zorder=5)
    _axes(ax, points)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=columns, fontsize=8,
               markerscale=0.4, frameon=False, title=title, title_fontsize=8)
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    return fig


def _axes(ax, points: Sequence[Group]) -> None:
    """Scales, limits (an accuracy never above 100%), readable ticks, labels and title."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    xs = [r.metrics["train_seconds"] for g in points for r in _timed(g)]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.margins(x=0.15, y=0.15)
    ys = [100 * r.acc for g in points for r in _timed(g)]
    if max(ys) - min(ys) < 0.05 and all(g.stats.acc.half_width is None for g in points):
        ax.set_ylim(min(ys) - 1, max(ys) + 1)  # one value: not matplotlib's ±6 %
    low, high = ax.get_ylim()
    if high > 100.5:
        ax.set_ylim(low, 100.5)  # an interval reaching past 100% is cut at the top
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("training time (seconds; mean of the group)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy vs training time: mean per group (numbered); bars: 95% CI of "
                 "the mean (Student t),\nnone for a single run; dots: single runs; marker size: "
                 "parameters", fontsize=10)
