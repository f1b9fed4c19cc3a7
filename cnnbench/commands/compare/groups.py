"""Runs whose experiment is the same but for the seed (comparison.identity) as one group, with
the settings that tell the groups apart and a label made of them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from cnnbench.commands.compare.group_stats import GroupStats, against_best, describe
from cnnbench.commands.compare.identity import key
from cnnbench.commands.compare.runs import OPTION_KEYS, RunRecord

FALLBACK_SETTINGS = ("model", "dataset")  # shown when no setting differs between the groups
FIRST_SETTINGS = (*[k for k in OPTION_KEYS if k != "seed"], "kind", "experiment")
ABSENT = "—"  # a setting that is not in a run's stored config (an older version, say)


@dataclass
class Group:
    runs: list[RunRecord]
    identity: dict[str, str]
    stats: GroupStats = field(init=False)
    settings: dict[str, str] = field(default_factory=dict)  # what tells it from the others
    label: str = ""

    @property
    def used(self) -> list[RunRecord]:
        return [r for r in self.runs if r.in_statistics]

    @property
    def left_out(self) -> list[RunRecord]:
        return [r for r in self.runs if not r.in_statistics]

    def setting(self, key: str) -> str | None:
        """The value of a setting; ABSENT when the stored config lacks it, None when it is
        unknown (no stored config could be read)."""
        if key in self.identity:
            return self.identity[key]
        return ABSENT if any(r.has_config for r in self.runs) else None


def _seed_order(run: RunRecord) -> tuple:
    seed = run.options.get("seed")
    return (not isinstance(seed, int), seed if isinstance(seed, int) else 0, str(run.path))


def seed_list(seeds: Sequence[Any]) -> str:
    """'1, 2, 7' or '1–5, 9' (three or more consecutive seeds as a range); '?' for unknown."""
    known = sorted(s for s in seeds if isinstance(s, int) and not isinstance(s, bool))
    parts: list[str] = []
    i = 0
    while i < len(known):
        j = i
        while j + 1 < len(known) and known[j + 1] == known[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{known[i]}–{known[j]}")
        else:
            parts.extend(str(s) for s in known[i:j + 1])
        i = j + 1
    parts += ["?"] * (len(seeds) - len(known))
    return ", ".join(parts)


def differing_settings(groups: Sequence[Group]) -> list[str]:
    """The identity keys whose known values (ABSENT among them) are not the same in every
    group. A key below a config group whose choice differs (model.hidden when the model
    differs) counts only when it also differs between groups of the same choice."""
    seen: dict[str, None] = dict.fromkeys(k for g in groups for k in g.identity)
    order = [k for k in FIRST_SETTINGS if k in seen] + [k for k in seen
                                                        if k not in FIRST_SETTINGS]
    known = {k: [(g, v) for g in groups if (v := g.setting(k)) is not None] for k in order}
    differ = [k for k in order if len({v for _, v in known[k]}) > 1]
    shown = []
    for k in differ:
        head = k.split(".")[0]
        if "." in k and head in differ:
            by_choice: dict[str | None, set[str]] = {}
            for g, value in known[k]:
                by_choice.setdefault(g.setting(head), set()).add(value)
            if all(len(values) == 1 for values in by_choice.values()):
                continue
        shown.append(k)
    return shown or [k for k in FALLBACK_SETTINGS if any(k in g.identity for g in groups)]


def _said_by_choice(groups: Sequence[Group], group: Group, key: str, keys: Sequence[str]) -> bool:
    """Whether a setting the group lacks goes without saying: it sits below a config group
    whose choice is shown, and no group of the same choice has it (lenet has no model.hidden)."""
    head = key.split(".")[0]
    if "." not in key or head not in keys:
        return False
    same = [g for g in groups if g.setting(head) == group.setting(head)]
    return all(g.setting(key) == ABSENT for g in same)


def _name(groups: Sequence[Group]) -> None:
    """Each group's settings and label; equal labels get the name of their first run."""
    keys = differing_settings(groups)
    for g in groups:
        g.settings = {k: v for k in keys if (v := g.setting(k)) is not None
                      and not (v == ABSENT and _said_by_choice(groups, g, k, keys))}
        g.label = ", ".join(f"{k}={v}" for k, v in g.settings.items()) or g.runs[0].name
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.label] = counts.get(g.label, 0) + 1
    for g in groups:
        if counts[g.label] > 1:
            g.label += f" [{g.runs[0].name}]"


def mark_repeats(runs: Sequence[RunRecord]) -> None:
    """Of the runs of one group (in seed order) that would enter the statistics with the same
    known seed, the first stays; the others repeat it: one experiment run again with the same
    seed is not another sample, and counting it would narrow the interval it gets."""
    first: dict[int, RunRecord] = {}
    for run in runs:
        seed = run.options.get("seed")
        if not run.in_statistics or not isinstance(seed, int) or isinstance(seed, bool):
            continue
        if seed in first:
            run.repeats = first[seed].short or first[seed].name
        else:
            first[seed] = run


def group_runs(runs: Sequence[RunRecord]) -> list[Group]:
    """One group per identity, best mean test accuracy first (groups with no run in the
    statistics last); the runs of a group in seed order; each group with its numbers."""
    by_key: dict[str, Group] = {}
    for run in runs:
        by_key.setdefault(key(run.identity), Group([], run.identity)).runs.append(run)
    groups = list(by_key.values())
    for g in groups:
        g.runs.sort(key=_seed_order)
        mark_repeats(g.runs)
        g.stats = describe(g.runs)
    against_best([g.stats for g in groups])
    groups.sort(key=lambda g: (g.stats.acc.mean is None, -(g.stats.acc.mean or 0.0)))
    _name(groups)
    return groups


def seeds_text(group: Group) -> str:
    """The seeds of the runs in the statistics (of every run when none is)."""
    return seed_list([r.options.get("seed") for r in group.used or group.runs])
