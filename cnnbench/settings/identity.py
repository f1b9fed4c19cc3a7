"""A run's identity: the hash of its resolved config, without the settings that say where or how
fast it runs rather than what it computes.

A sweep job is known by this hash, not by its number: running a sweep again in its directory
finds each job's earlier attempt by it (`sweep_plan`), however the sweep's lists were reordered
or extended. Which keys count is the `identity` column of the table of run options
(settings/run_options.py): left out are the checkpoint a run resumes from, where the data lies,
the device, the progress bars, the speed options that a resume may change too and Hydra's own
settings; a key added to the shipped config later is left out while it holds its default, and a
class that moved is read under its former name. Everything else counts, the number of epochs,
the evaluation and any +key added included.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cnnbench import rundir
from cnnbench.settings.run_options import ADDED_KEYS, LEFT_OUT_OF_IDENTITY, MOVED_VALUES

IGNORED = LEFT_OUT_OF_IDENTITY


def _plain(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 (an interpolation that only resolves inside Hydra)
        return OmegaConf.to_container(cfg, resolve=False)


_ANY = object()


def _parent_and_leaf(data: dict[str, Any], key: str) -> tuple[Any, str]:
    """The mapping that holds the dotted `key` (None where there is none), and its last part."""
    *parents, leaf = key.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return node, leaf


def _drop(data: dict[str, Any], key: str, only: Any = _ANY) -> None:
    """Remove the dotted `key` from `data` (with `only`, only while it holds that value)."""
    node, leaf = _parent_and_leaf(data, key)
    if isinstance(node, dict) and leaf in node and (only is _ANY or node[leaf] == only):
        del node[leaf]


def _read_as_before_the_move(data: dict[str, Any]) -> None:
    for key, moved in MOVED_VALUES.items():
        node, leaf = _parent_and_leaf(data, key)
        if isinstance(node, dict) and node.get(leaf) in moved:
            node[leaf] = moved[node[leaf]]


def config_hash(cfg: DictConfig) -> str:
    """The hex SHA-256 of the task config, resolved, minus IGNORED (the `hydra` node among them)
    and the ADDED_KEYS at their default, with moved classes under their former names."""
    data = _plain(cfg)
    _read_as_before_the_move(data)
    for key in IGNORED:
        _drop(data, key)
    for key, default in ADDED_KEYS.items():
        _drop(data, key, only=default)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_config_hash(run_dir: Path) -> str | None:
    """The identity a run directory stored when its job started; for a run that stored none
    (made before identities were stored, or killed before its job began), the hash of the config
    Hydra saved in its .hydra/config.yaml, where that holds no interpolation that would run a
    resolver; None when neither can be read so."""
    stored = rundir.read_config_hash(run_dir)
    if stored is not None:
        return stored
    from cnnbench.rundir.stored_text import StoredTextError, read_stored_yaml, resolver_free

    try:  # someone else's text: bounded plain YAML, resolved only where it refers to itself
        data = read_stored_yaml(Path(run_dir) / rundir.HYDRA_DIR / "config.yaml")
    except (OSError, StoredTextError):
        return None
    if not isinstance(data, dict):
        return None
    for key in IGNORED:  # where the data lies (an ${oc.env:...} root) counts for nothing
        _drop(data, key)
    if not resolver_free(data):
        return None
    try:
        return config_hash(OmegaConf.create(data))
    except Exception:  # noqa: BLE001 (a reference to a key it lacks, a key OmegaConf refuses)
        return None
