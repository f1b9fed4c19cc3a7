"""What a resume reads from the run directory, and which overrides it may add or change.

`.hydra/overrides.yaml` is someone else's file: only a YAML list of plain `key=value` strings
whose keys lie in cnnbench's own config groups is replayed (no hydra.* keys, no `_target_`-like
keys, no +/~ prefixes but the `+search.trial=N` a search gives its jobs, no ${...}
interpolation), and a group's choice must name one of the options cnnbench ships in
conf/<group>/ (`model=../../elsewhere/evil` would have Hydra read a YAML file from anywhere,
which may set hydra.callbacks: classes Hydra instantiates). The run's files are read as
bounded plain YAML (`rundir.stored_text`).

The user's overrides may change only the settings in CHANGEABLE (the `resume` column of the table
of run options, settings/run_options.py), but for the keys in FIXED_HYDRA below them; any other
must repeat the run's own value (resume.py's docstring says why).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cnnbench.errors import UserError
from cnnbench.rundir.stored_text import StoredTextError, read_stored_yaml, stored_yaml
from cnnbench.settings.config_files import group_options
from cnnbench.settings.overrides import hydra_unquote, override_key
from cnnbench.settings.run_options import CHANGEABLE_ON_RESUME, FIXED_UNDER_CHANGEABLE
from cnnbench.settings.trial import is_trial_override

RESUME_KEY = "trainer.resume"
GROUPS = ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer", "evaluation",
          "experiment", "hparams_search", "published")
CHANGEABLE = CHANGEABLE_ON_RESUME
FIXED_HYDRA = FIXED_UNDER_CHANGEABLE
KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def _untrusted(path: Path, entry: Any, why: str) -> UserError:
    return UserError(f"{path} is not trusted, so the run is not resumed: {why} (entry "
                     f"{entry!r}). A cnnbench run writes only plain key=value overrides of its "
                     f"own config groups ({', '.join(GROUPS)}) there. Check where the run "
                     f"directory came from, or start a new run without trainer.resume.")


def vet_override(entry: Any, path: Path) -> str:
    if not isinstance(entry, str):
        raise _untrusted(path, entry, "an entry is not a string")
    key, sep, value = entry.partition("=")
    if not sep:
        raise _untrusted(path, entry, "an entry is not key=value")
    if is_trial_override(entry):  # the trial number a search gave its job
        return entry
    if key[:1] in "+~" or not KEY.fullmatch(key):
        raise _untrusted(path, entry, f"'{key}' is not a plain config key")
    if key.split(".")[0] not in GROUPS:
        raise _untrusted(path, entry, f"'{key}' is outside cnnbench's config groups")
    if any(part.startswith("_") or part.endswith("_") for part in key.split(".")):
        raise _untrusted(path, entry, f"'{key}' names a special (_..._) key")
    if "${" in value and key != RESUME_KEY:
        raise _untrusted(path, entry, "the value holds a ${...} interpolation")
    if key in GROUPS and group_options(key) and not _shipped_choice(key, value):  # a choice
        raise _untrusted(path, entry, f"'{value}' is not one of the {key} options cnnbench "
                                      f"ships ({', '.join(group_options(key))})")
    return entry


def _shipped_choice(group: str, value: str) -> bool:
    """Whether `value` (`name`, `null`, or a list `[a,b]` of names) chooses only options of
    conf/<group>/ that cnnbench ships: never a path to a YAML file elsewhere."""
    names = value[1:-1].split(",") if value.startswith("[") and value.endswith("]") else [value]
    options = group_options(group)
    return all(n.strip().strip("'\"") in options or n.strip() == "null" for n in names)


def stored_overrides(run: Path) -> list[str]:
    """The run's own overrides, vetted, without its trainer.resume."""
    path = run / ".hydra" / "overrides.yaml"
    try:
        entries = read_stored_yaml(path)
    except FileNotFoundError:
        raise UserError(f"{run} has no .hydra/overrides.yaml, so the settings the run was "
                        f"started with are unknown and it cannot be resumed. Start a new run "
                        f"without trainer.resume.") from None
    except (OSError, StoredTextError) as err:
        raise UserError(f"{path} cannot be read ({' '.join(str(err).split())[:200]}), so the "
                        f"run cannot be resumed. Start a new run without trainer.resume.") from None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _untrusted(path, entries, "it is not a YAML list of overrides")
    return [vet_override(e, path) for e in entries if override_key(str(e)) != RESUME_KEY]


def _value(text: str) -> Any:
    try:
        return stored_yaml(hydra_unquote(text))
    except StoredTextError:
        return text


def _read_yaml(path: Path) -> Any:
    try:
        return read_stored_yaml(path)
    except (OSError, StoredTextError):
        return None


def run_value(key: str, stored: list[str], run: Path) -> Any:
    """The run's own value of `key`: its override, its group choice or its composed config."""
    for entry in reversed(stored):
        if override_key(entry) == key:
            return _value(entry.split("=", 1)[1])
    if "." not in key and "/" not in key:
        hydra_cfg = _read_yaml(run / ".hydra" / "hydra.yaml") or {}
        choices = (hydra_cfg.get("hydra") or {}).get("runtime", {}).get("choices", {})
        return choices.get(key, Ellipsis) if isinstance(choices, dict) else Ellipsis
    node = _read_yaml(run / ".hydra" / "config.yaml")
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return Ellipsis
        node = node[part]
    return node


def _rate(text: str) -> bool:
    value = _value(text)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e308


def changeable(key: str) -> bool:
    def under(prefixes):
        return any(key == p or key.startswith((p + ".", p + "/")) for p in prefixes)

    return under(CHANGEABLE) and not under(FIXED_HYDRA)


def check_user_overrides(user: list[str], stored: list[str], run: Path) -> None:
    """Refuse, in one paragraph, every override that would change what the run is."""
    refused = []
    for arg in user:
        key = override_key(arg)
        if changeable(key) and not arg.startswith("~"):
            continue
        theirs = run_value(key, stored, run)
        if "=" in arg and theirs is not Ellipsis and _value(arg.split("=", 1)[1]) == theirs:
            continue
        if key == "optimizer.lr" and theirs == "auto" and _rate(arg.split("=", 1)[1]):
            continue  # the number `auto` stands for, where the run's record of it is lost
        refused.append(arg + ("" if theirs is Ellipsis else f" (the run has {theirs!r})"))
    if refused:
        raise UserError(
            f"A resumed run keeps the settings it was started with, so this resume of {run} "
            f"cannot take {', '.join(refused)}: its checkpoint (weights, optimizer state, "
            f"schedule) and curves belong to the run's own values. Drop "
            f"{'that override' if len(refused) == 1 else 'those overrides'} to continue the run, "
            f"or start a new run without trainer.resume to train with them. A resume may change "
            f"only {', '.join(k for k in CHANGEABLE if k != 'hydra')} and hydra.* flags; "
            f"nothing was written.")


def requested_epochs(user: list[str]) -> int | None:
    """trainer.epochs as the user asked for it (None when the user left it off)."""
    value = next((_value(a.split("=", 1)[1]) for a in reversed(user)
                  if override_key(a) == "trainer.epochs" and "=" in a), None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"trainer.epochs={value!r} is not valid: it must be a whole number of "
                        f"at least 1 (the total number of epochs of the run).")
    return value
