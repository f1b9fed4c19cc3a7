"""The names an override uses, checked before anything starts: the config group or top-level
setting it names (`modle=mlp`, `+optimzer=sgd`, `++unknown=1`), the option it chooses
(`model=nope`) and the key it sets inside a group (`optimizer.lrr=0.1`).

Known are: the groups of conf/ and their options; every key of the shipped config (train.yaml,
each group's options, the keys the experiment presets set); and every key of the run-options
table (`settings.run_options`), which includes keys cnnbench reads that the default config
leaves out (`+dataset.train_size=...`, `+reference=...`). Hydra checks its own settings
(`hydra.*`, `hydra/launcher=...`). `+` may add any key inside a model, optimizer, scheduler or
augmentation option: those keys are the arguments of the class the option builds.

A mistake is one paragraph with the nearest known name (difflib), the same in every command
that takes overrides.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Sequence

import yaml

from cnnbench.errors import UserError
from cnnbench.settings.config_files import config_dir, group_options
from cnnbench.settings.run_options import RECIPE_GROUPS, ROWS
from cnnbench.settings.typed import unknown_keys_error

HYDRA = "hydra"  # Hydra's own settings and groups: Hydra checks them
NOUNS = {"experiment": "experiment preset", "hparams_search": "hyperparameter search",
         "trainer": "trainer preset", "evaluation": "evaluation preset"}
_PREFIX = re.compile(r"^(\+\+|\+|~)?")
_SWEEP_FUNCTIONS = "()[]{}*$"  # choice(...), glob(*), interpolations: checked by Hydra


@dataclass(frozen=True)
class Names:
    """The config groups with their options, and the tree of known keys (name -> the names
    below it; an empty dict for a value)."""

    groups: dict[str, list[str]]
    tree: dict[str, Any]


def _merge(tree: dict[str, Any], data: Any) -> None:
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if isinstance(key, str) and key != "defaults":
            _merge(tree.setdefault(key, {}), value)


def known_names() -> Names:
    """Every name an override may use, read from conf/ and the run-options table."""
    root = config_dir()
    groups = {p.name: group_options(p.name) for p in root.iterdir()
              if p.is_dir() and p.name != HYDRA and group_options(p.name)}
    tree: dict[str, Any] = {}
    train = yaml.safe_load((root / "train.yaml").read_text()) or {}
    _merge(tree, {k: v for k, v in train.items() if k != HYDRA})
    for group, options in sorted(groups.items()):
        node = tree.setdefault(group, {})
        for option in options:
            text = (root / group / f"{option}.yaml").read_text()
            data = yaml.safe_load(text) or {}
            if "@package _global_" in text.split("\n", 1)[0]:  # a preset sets keys anywhere
                _merge(tree, {k: v for k, v in data.items() if k != HYDRA})
            else:
                _merge(node, data)
    for row in ROWS:
        node = tree
        for name in row.path.replace("/", ".").split("."):
            node = node.setdefault(name, {})
    return Names(groups, tree)


def _nearest(name: str, known: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def _listing(names: Names, own: Sequence[str]) -> str:
    settings = sorted(k for k in names.tree if k not in (*names.groups, HYDRA))
    mine = f"; its own options: {', '.join(own)}" if own else ""
    return (f"Config groups (group=option): {', '.join(sorted(names.groups))}; settings: "
            f"{', '.join(settings)}; Hydra's own: hydra.*{mine}")


def _has(data: Any, path: Sequence[str]) -> bool:
    for name in path:
        if not isinstance(data, dict) or name not in data:
            return False
        data = data[name]
    return True


def _configs(names: Names) -> tuple[Any, dict[str, list[Any]], list[Any]]:
    """(train.yaml, each group's options, the presets that set keys anywhere), as loaded."""
    root = config_dir()
    options: dict[str, list[Any]] = {}
    presets: list[Any] = []
    for group, choices in names.groups.items():
        for option in choices:
            text = (root / group / f"{option}.yaml").read_text()
            data = yaml.safe_load(text) or {}
            if "@package _global_" in text.split("\n", 1)[0]:
                presets.append(data)
            else:
                options.setdefault(group, []).append(data)
    return yaml.safe_load((root / "train.yaml").read_text()) or {}, options, presets


def _adding(prefix: str, path: list[str], names: Names) -> str:
    """The prefix a suggested key takes in place of the user's `+`/`++`: none when the config
    has the key whatever options are chosen (a setting of train.yaml, or a key every option of
    its group has: Hydra refuses to add it again with `+`); `++` (add, or set when there) when
    only some options or presets have it; the user's own when no config file has it."""
    train, options, presets = _configs(names)
    grouped = path[0] in options
    shipped = options[path[0]] if grouped else [train]
    found = [_has(data, path[1:] if grouped else path) for data in shipped]
    if all(found):
        return ""
    if any(found) or any(_has(data, path) for data in presets):
        return "++"
    return prefix


def _unknown_top(arg: str, prefix: str, path: list[str], names: Names, command: str,
                 own: Sequence[str]) -> UserError:
    top, key, (_, sep, value) = path[0], ".".join(path), arg.partition("=")
    match = _nearest(top, [*names.tree, *own])
    hint = ""
    if match is not None:
        again = "" if (match in names.groups and len(path) == 1) or match in own else prefix
        if "+" in prefix and match not in own:
            again = _adding(prefix, [match, *path[1:]], names)
        hint = f" (did you mean {again}{match}{key[len(top):]}{sep}{value}?)"
    added = (f" A + adds a key to the config, and nothing in cnnbench reads '{top}': the run "
             f"would ignore it." if "+" in prefix else "")
    return UserError(f"{arg}: cnnbench has no config group or setting named '{top}'{hint}."
                     f"{added} {_listing(names, own)}. `cnnbench {command} --help` says more.")


def _noun(group: str) -> str:
    return NOUNS.get(group, group)


def check_choice(group: str, value: str, options: Sequence[str], command: str) -> None:
    """`group=value` (a sweep's `group=a,b` too) chooses options that exist."""
    if any(c in value for c in _SWEEP_FUNCTIONS):
        return
    listed = ", ".join(options)
    if not value.strip(", "):
        raise UserError(f"{group}= names no option. Choose one of: {listed} "
                        f"(e.g. {group}={options[0]}).")
    for choice in (v.strip().strip("'\"") for v in value.split(",")):
        if choice and choice not in options:
            noun = _noun(group)
            article = "an" if noun[0] in "aeiou" else "a"
            match = _nearest(choice, options)
            hint = f"; did you mean {group}={match}?" if match else ""
            raise UserError(f"{group}={choice} is not {article} {noun}; {noun}s: {listed}{hint} "
                            f"(one YAML file each in conf/{group}/; `cnnbench {command} --help` "
                            f"lists every group).")


def check_key(prefix: str, path: list[str], names: Names) -> None:
    """The names below the first in a dotted key exist; `+` may add the arguments of a
    model, optimizer, scheduler or augmentation option."""
    node = names.tree[path[0]]
    for depth, name in enumerate(path[1:], start=1):
        if not node:  # a value, or a group of keys only its option knows
            return
        if name not in node:
            if "+" in prefix and path[0] in RECIPE_GROUPS:
                return
            shown = sorted(k for k in node if not k.startswith("_") or name.startswith("_"))
            err = unknown_keys_error(".".join(path[:depth]), [name], shown)
            if "+" in prefix:
                err = UserError(f"{err} A + adds a key to the config, and nothing in cnnbench "
                                f"reads {'.'.join(path[:depth + 1])}: the run would ignore it.")
            raise err
        node = node[name]


def check_override_names(args: Sequence[str], command: str = "train",
                         own: Sequence[str] = ()) -> None:
    """Every override names a known group, option and key (`own`: the command's own options,
    which are skipped and offered as suggestions); a mistake is one UserError paragraph."""
    names: Names | None = None
    for arg in args:
        if arg.startswith("-"):
            continue
        prefix = _PREFIX.match(arg).group(0)
        key, sep, value = arg[len(prefix):].partition("=")
        path = key.replace("/", ".").split(".")
        if (not sep and prefix != "~") or not key or "@" in key or path[0] in (HYDRA, *own):
            continue
        names = names or known_names()
        if path[0] not in names.tree:
            raise _unknown_top(arg, prefix, path, names, command, own)
        if len(path) == 1 and path[0] in names.groups and sep:
            check_choice(path[0], value, names.groups[path[0]], command)
        else:
            check_key(prefix, path, names)


def plain_group_choices(args: Sequence[str]) -> list[str]:
    """`+group=option` (and `++`) as `group=option`: every group of conf/ is in the default
    config's list (the optional ones as null), where Hydra would refuse a second value."""
    groups = {p.name for p in config_dir().iterdir() if p.is_dir() and p.name != HYDRA}
    out = []
    for arg in args:
        prefix = _PREFIX.match(arg).group(0)
        key, sep, _ = arg[len(prefix):].partition("=")
        out.append(arg[len(prefix):] if "+" in prefix and sep and key in groups else arg)
    return out
