"""What identifies a run's experiment, seed aside: the key that groups repeated seeds.

A run's identity is its composed config (.hydra/config.yaml, as stored: never resolved) with
its config-group choices (.hydra/hydra.yaml), flattened to dotted keys, less the seed and the
settings that change where or how a run is shown rather than what it computes (the device, the
progress bars, the data folder, checkpoint files, resuming, Hydra's own settings, the preset's
published number and references: the `compare` column of the table of run options,
settings/run_options.py), and the keys added to the config later while they hold their default
(run_options.ADDED_KEYS: older runs have none). The options metrics.json records
(model, lr, ...) win over the stored config where both exist. Two runs with the same identity
differ only in their seed.
"""
from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any, Mapping

from cnnbench.rundir.record import shown_text
from cnnbench.settings.run_options import (
    ADDED_KEYS,
    KEY_OF_VALUE_OPTION,
    LEFT_OUT_OF_COMPARE,
    row_for,
)

# dotted keys (and everything below them) that do not change the experiment
NOT_IDENTITY = LEFT_OUT_OF_COMPARE
# config keys shown under the names metrics.json gives them (cnnbench.run.provenance.run_options)
OPTION_NAMES = MappingProxyType({key: option for option, key in KEY_OF_VALUE_OPTION.items()
                                 if row_for(key).compare})
SEED = "seed"


def text(value: Any) -> str:
    """A value as the text that identifies it (and is shown): JSON for lists and mappings."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # 1.0 and 1 are one setting (an override may give either)
    try:
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    except (TypeError, ValueError):
        return repr(value)


def _excluded(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in NOT_IDENTITY)


def _added_at_default(key: str, value: Any) -> bool:
    """A key added to the config later, at the default that older runs (without it) had."""
    return key in ADDED_KEYS and text(value) == text(ADDED_KEYS[key])


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def identity(config: Any, choices: Any, options: Mapping[str, Any],
             kind: Any = None) -> dict[str, str]:
    """The identity of one run (display name -> value text), from whatever of its stored
    config (a mapping or None), config-group choices (a mapping or None) and recorded options
    could be read, as safe text (`shown_text`)."""
    ident: dict[str, str] = {}
    if isinstance(config, Mapping):
        for key, value in flatten(config).items():
            if not _excluded(key) and not _added_at_default(key, value):
                ident[OPTION_NAMES.get(key, key)] = text(value)
    if isinstance(choices, Mapping):
        for key, value in choices.items():
            if isinstance(key, str) and not key.startswith("hydra/") and value is not None:
                ident[key] = text(value)
    for key, value in options.items():
        if key != SEED and value is not None:
            ident[key] = text(value)
    if isinstance(kind, str) and kind != "train":
        ident["kind"] = kind
    # a run's files are someone else's text: keys and values are shown, never control characters
    return {shown_text(k): shown_text(v) for k, v in ident.items()}


def key(ident: Mapping[str, str]) -> str:
    """One string per identity: equal identities, equal keys."""
    return json.dumps(sorted(ident.items()))
