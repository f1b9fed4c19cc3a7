"""comparison.csv: one row per group of seeds, raw numbers (fractions, seconds, joules) for
spreadsheets and pandas; empty cells where there is no value (a single run has no std)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from cnnbench.commands.compare import cells
from cnnbench.commands.compare.group_stats import GroupStats
from cnnbench.commands.compare.group_table import optional_columns, shift_keys
from cnnbench.commands.compare.groups import Group
from cnnbench.commands.compare.runs import OPTION_KEYS
from cnnbench.commands.compare.stats import Summary
from cnnbench.rundir.csv_cells import plain_record, plain_row

MEANS = ("test/loss", "test/macro_f1", "params", "images_per_s")


def _summary(name: str, summary: Summary) -> dict[str, Any]:
    return {f"{name}_mean": summary.mean, f"{name}_std": summary.std,
            f"{name}_ci95_low": summary.ci_low, f"{name}_ci95_high": summary.ci_high}


def _published(s: GroupStats) -> dict[str, Any]:
    pub = s.published or {}
    return {"published_value": pub.get("value"), "published_metric": pub.get("metric"),
            "published_source": pub.get("source"), "verdict": cells.verdict(s)}


def _target(s: GroupStats) -> dict[str, Any]:
    t = s.target
    if t is None:
        return dict.fromkeys(("target", "reached_target", "tracked_target",
                              "time_to_target_s_mean", "time_to_target_s_ci95_low",
                              "time_to_target_s_ci95_high", "epochs_to_target_mean"))
    return {"target": " / ".join(t.goals), "reached_target": t.reached,
            "tracked_target": t.tracked, "time_to_target_s_mean": t.seconds.mean,
            "time_to_target_s_ci95_low": t.seconds.ci_low,
            "time_to_target_s_ci95_high": t.seconds.ci_high,
            "epochs_to_target_mean": t.epochs.mean}


def _energy(s: GroupStats) -> dict[str, Any]:
    e = s.energy
    if e is None:
        return dict.fromkeys(("energy_runs_measured", "energy_joules_mean",
                              "joules_per_point_mean", "energy_note"))
    return {"energy_runs_measured": e.measured, "energy_joules_mean": e.joules.mean,
            "joules_per_point_mean": e.per_point.mean, "energy_note": "; ".join(e.notes)}


def group_row(g: Group, best: GroupStats | None, shifts: Sequence[str],
              has: dict[str, bool]) -> dict[str, Any]:
    """One group as raw values, keyed by column name."""
    s = g.stats
    seeds = [r.options.get("seed") for r in g.used or g.runs]
    row: dict[str, Any] = {"group": g.label, "seeds": ";".join(map(str, seeds)), "n": s.acc.n,
                           "left_out": len(g.left_out),
                           "left_out_why": cells.left_out(g.left_out)}
    row.update({k: g.identity.get(k) for k in OPTION_KEYS if k != "seed"})
    row.update({k: v for k, v in g.settings.items() if k not in row})
    row.update(_summary("test/acc", s.acc))
    row.update({"vs_best_p": s.p_best, "vs_best": cells.vs_best(s, best)})
    row.update(_summary("train_seconds", s.seconds))
    row.update({f"{k}_mean": s.means.get(k) for k in (*MEANS, *shifts)})
    row.update(_published(s) if has["published"] else {})
    row.update(_target(s) if has["target"] else {})
    row.update(_energy(s) if has["energy"] else {})
    row["runs"] = "; ".join(r.name for r in g.runs)
    return row


def group_rows(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """The groups as raw values, one dict per group: comparison.csv's rows."""
    best = next((g.stats for g in groups if g.stats.best), None)
    has = optional_columns(groups)
    return [group_row(g, best, shift_keys(groups), has) for g in groups]


def write_group_csv(groups: Sequence[Group], path: Path) -> Path:
    rows = group_rows(groups)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writerow(dict(zip(columns, plain_row(columns))))
        for row in rows:
            writer.writerow(plain_record({k: "" if v is None else v for k, v in row.items()}))
    return path
