"""One row per group of seeds: the terminal table, the Markdown table and comparison.csv."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from cnnbench.commands.compare import cells
from cnnbench.commands.compare.abbrev import abbreviations
from cnnbench.commands.compare.groups import Group, seeds_text
from cnnbench.commands.compare.runs import RunRecord
from cnnbench.commands.compare.stats import NOISE_P
from cnnbench.commands.compare.table import run_markdown

SPREAD = ("std", "CI95")
NUMERIC = {"n", "test acc", *SPREAD, "loss", "macro F1", "params", "train s", "img/s",
           "energy J", "J/pt", "published", "to target"}
# metric columns left out when no group has a value in them (runs of older versions)
HIDE_WHEN_EMPTY = ("loss", "macro F1", "params", "train s", "img/s")


def setting_keys(groups: Sequence[Group]) -> list[str]:
    return list(dict.fromkeys(k for g in groups for k in g.settings))


def short_names(groups: Sequence[Group]) -> dict[str, str]:
    """The settings' short names, shared by the terminal table and the pictures: never the
    name of another of the table's columns."""
    keys, (columns, _) = setting_keys(groups), group_columns(groups)
    return abbreviations(keys, reserved=[c for c in columns if c not in keys])


def shift_keys(groups: Sequence[Group]) -> list[str]:
    keys = {k for g in groups for k in g.stats.means if k.startswith("shift/")}
    return sorted(keys, key=lambda k: int("".join(c for c in k if c.isdigit()) or 0))


def _goals(groups: Sequence[Group]) -> list[str]:
    return list(dict.fromkeys(goal for g in groups if g.stats.target
                              for goal in g.stats.target.goals))


def optional_columns(groups: Sequence[Group]) -> dict[str, bool]:
    """Which of the columns fed by newer metrics.json fields any group has."""
    return {"published": any(g.stats.published for g in groups),
            "target": any(g.stats.target for g in groups),
            "energy": any(g.stats.energy and g.stats.energy.measured for g in groups),
            "left out": any(g.left_out for g in groups)}


def group_columns(groups: Sequence[Group]) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted cells, shared by the terminal table and comparison.md."""
    keys, shifts, goals = setting_keys(groups), shift_keys(groups), _goals(groups)
    has = optional_columns(groups)
    best = next((g.stats for g in groups if g.stats.best), None)
    columns = [*keys, "seeds", "n", "test acc", *SPREAD, "vs best", "loss", "macro F1",
               *[f"acc {k.split('/')[1]}" for k in shifts], "params", "train s", "img/s"]
    columns += ["published", "verdict"] if has["published"] else []
    columns += ["to target"] if has["target"] else []
    columns += ["energy J", "J/pt"] if has["energy"] else []
    columns += ["left out"] if has["left out"] else []
    rows = []
    for g in groups:
        s, m = g.stats, g.stats.means
        row = [*[g.settings.get(k, "") for k in keys], seeds_text(g), str(s.acc.n),
               cells.pct(s.acc.mean), cells.std_pts(s.acc), cells.ci_pct(s.acc),
               cells.vs_best(s, best), cells.num(m.get("test/loss"), ".4f"),
               cells.pct(m.get("test/macro_f1")), *[cells.pct(m.get(k)) for k in shifts],
               cells.num(m.get("params"), ",.0f"), cells.seconds(s.seconds),
               cells.num(m.get("images_per_s"), ",.0f")]
        row += [cells.published(s), cells.verdict(s)] if has["published"] else []
        row += [cells.to_target(s, with_goal=len(goals) > 1)] if has["target"] else []
        row += list(cells.energy(s)) if has["energy"] else []
        row += [cells.left_out(g.left_out)] if has["left out"] else []
        rows.append(row)
    empty = [i for i, c in enumerate(columns)
             if c in HIDE_WHEN_EMPTY and rows and not any(r[i] for r in rows)]
    return ([c for i, c in enumerate(columns) if i not in empty],
            [[cell for i, cell in enumerate(r) if i not in empty] for r in rows])


def notes(groups: Sequence[Group], columns: Sequence[str]) -> list[str]:
    """What the columns mean, one sentence each (the table's caption, comparison.md's notes)."""
    std = "; std: their standard deviation (percentage points)" if "std" in columns else ""
    lines = ["One row per group of runs that differ only in trainer.seed, best mean test "
             "accuracy first; only completed runs with a test accuracy enter the statistics, "
             "one run per seed.",
             f"test acc: the mean over the group's runs{std}; CI95: the 95% confidence "
             "interval of the mean (Student t, percent); none for a single run.",
             f"vs best: Welch's t-test against the best group; 'within noise': p ≥ {NOISE_P} "
             "(the seeds do not tell the two apart)."
             + (" train s: mean ± std." if "train s" in columns else "")]
    if any(c.startswith("acc ") for c in columns):
        lines.append("acc Npx: test accuracy with the test images shifted N px right and down.")
    if "verdict" in columns:
        lines.append("verdict: 'matches' when the published number lies inside our CI95, "
                     "'above'/'below' when our whole CI95 lies above/below it; none for n=1.")
    if "to target" in columns:
        goals = _goals(groups)
        goal = f" ({goals[0]})" if len(goals) == 1 else ""
        lines.append(f"to target{goal}: mean ± CI95 half-width of the seconds to the target, "
                     f"over the runs that reached it (reached/runs that tracked it).")
    if "J/pt" in columns:
        lines.append("energy J: joules per run (mean); J/pt: joules per point of test "
                     "accuracy (joules / (100 × test acc)).")
    unmeasured = list(dict.fromkeys(n for g in groups if g.stats.energy
                                    for n in g.stats.energy.notes))
    if unmeasured and any(g.stats.energy and g.stats.energy.measured for g in groups):
        # (a comparison of CPU runs only needs no word on energy)
        lines.append("energy not measured: " + "; ".join(unmeasured) + ".")
    mixed = [f"{g.label} ({', '.join(devices)})" for g in groups
             if len(devices := sorted({str(r.extras["device"]) for r in g.used
                                       if r.extras.get("device")})) > 1]
    if mixed:
        lines.append("Groups whose runs ran on different devices (their training times are "
                     "not one machine's): " + "; ".join(mixed) + ".")
    return lines


def group_markdown(groups: Sequence[Group]) -> list[str]:
    columns, rows = group_columns(groups)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = [*notes(groups, columns), ""]
    lines += ["| " + " | ".join(esc(c) for c in columns) + " |",
              "|" + "|".join("---:" if c in NUMERIC or c.startswith("acc ")
                             else "---" for c in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def write_markdown(groups: Sequence[Group], runs: Sequence[RunRecord], path: Path,
                   title: str, appendix: Sequence[str] = ()) -> Path:
    """The group table with what its columns mean, then one row per run, then `appendix`
    (the evaluations)."""
    lines = [f"# {title}", "", *group_markdown(groups), "", "## Runs", "",
             "Sorted by test accuracy.", "", *run_markdown(runs), *appendix]
    path.write_text("\n".join(lines) + "\n")
    return path
