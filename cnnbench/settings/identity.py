"""A run's identity: the hash of its resolved config, without the settings that say where or how
fast it runs rather than what it computes.

A sweep job is known by this hash, not by its number: running a sweep again in its directory
finds each job's earlier attempt by it (`sweep_plan`), however the sweep's lists were reordered
or extended. Left out: the checkpoint a run resumes from, where the data lies, the device, the
progress bars and the speed options that a resume may change too (`resume_policy.CHANGEABLE`),
and a key added to the shipped config later while it holds its default (config_files.ADDED_KEYS).
Everything else counts, the number of epochs, the evaluation and any +key added included.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cnnbench import rundir
from cnnbench.settings.config_files import ADDED_KEYS

IGNORED = ("trainer.resume", "trainer.progress", "trainer.device", "trainer.num_workers",
           "trainer.eval_batch_size", "trainer.data_on_device", "trainer.compile",
           "trainer.cuda_graph", "dataset.root")


def _plain(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 (an interpolation that only resolves inside Hydra)
        return OmegaConf.to_container(cfg, resolve=False)


_ANY = object()


def _drop(data: dict[str, Any], key: str, only: Any = _ANY) -> None:
    """Remove the dotted `key` from `data` (with `only`, only while it holds that value)."""
    *parents, leaf = key.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node and (only is _ANY or node[leaf] == only):
        del node[leaf]


# A class that moved keeps the identity it had: runs stored before the move and after it are
# the same jobs of a sweep.
MOVED_TARGETS = {"cnnbench.engine.augment.BatchAugment": "cnnbench.augment.BatchAugment"}


def config_hash(cfg: DictConfig) -> str:
    """The hex SHA-256 of the task config (no `hydra` node), resolved, minus IGNORED."""
    data = _plain(cfg)
    data.pop("hydra", None)
    augmentation = data.get("augmentation")
    if isinstance(augmentation, dict) and augmentation.get("_target_") in MOVED_TARGETS:
        augmentation["_target_"] = MOVED_TARGETS[augmentation["_target_"]]
    for key in IGNORED:
        _drop(data, key)
    for key, default in ADDED_KEYS.items():
        _drop(data, key, only=default)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_config_hash(run_dir: Path) -> str | None:
    """The identity a run directory stored when its job started; for a run that stored none
    (made before identities were stored, or killed before its job began), the hash of the config
    Hydra saved in its .hydra/config.yaml; None when neither can be read."""
    stored = rundir.read_config_hash(run_dir)
    if stored is not None:
        return stored
    path = Path(run_dir) / rundir.HYDRA_DIR / "config.yaml"
    try:
        cfg = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 (missing, unreadable or not YAML: no identity)
        return None
    return config_hash(cfg) if isinstance(cfg, DictConfig) else None
