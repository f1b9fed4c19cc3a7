"""The config stored in a checkpoint, read as data: nothing in it chooses what runs or where
files go.

The text is read as bounded plain YAML (`rundir.stored_text.stored_yaml`: no tags, no anchors
or aliases, no deep nesting, a few MB at most). An interpolation that only refers to another
key (`${optimizer.lr}`) is kept; one that would call a resolver (`${oc.env:...}`, `${now:...}`)
is refused, except for `dataset.root`, which falls back to the root cnnbench's own dataset
config gives (the checkpoint's own root is kept when it is a plain path). `dataset.download` is
off: a stored config never fetches anything; the user's command line may turn it on again.
Models, optimizers and augmentations are then built through the allow-lists (models.registry,
safe_build), never by importing what the text names.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from cnnbench.errors import UserError
from cnnbench.rundir.stored_text import StoredTextError, resolvers, stored_yaml
from cnnbench.settings.config_files import config_dir, group_options


def _untrusted(source: Path | str, why: str) -> UserError:
    return UserError(f"{source} is not a checkpoint whose stored config can be trusted: {why}. "
                     f"A checkpoint's config is data; cnnbench writes plain values there, so the "
                     f"file was edited or comes from elsewhere. Evaluate a checkpoint that "
                     f"`cnnbench train` wrote, or retrain the model.")


def _shipped_root(dataset: Any) -> Any:
    """The `root` of cnnbench's own conf/dataset/<name>.yaml (None for an unknown name)."""
    name = dataset.get("name") if isinstance(dataset, dict) else None
    if not isinstance(name, str) or name not in group_options("dataset"):
        return None
    return yaml.safe_load((config_dir() / "dataset" / f"{name}.yaml").read_text()).get("root")


def _check_interpolations(node: Any, source: Path | str) -> None:
    for key, text in resolvers(node):
        raise _untrusted(source, f"{key}={text!r} is an interpolation that would run a resolver "
                                 f"(environment variables, the time, ...), and resolvers are "
                                 f"never run on stored text")


def stored_config(text: str, source: Path | str) -> DictConfig:
    """The checkpoint's config as a DictConfig of plain values (see the module docstring)."""
    try:
        data = stored_yaml(text)
    except StoredTextError as err:
        raise _untrusted(source, f"its config cannot be read as data: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("dataset"), dict):
        raise _untrusted(source, "its config is not a mapping with a dataset section")
    dataset = data["dataset"]
    shipped_root = isinstance(dataset.get("root"), str) and "${" in dataset["root"]
    if shipped_root:
        dataset["root"] = None
    _check_interpolations(data, source)
    try:  # references resolved now, within the stored config: what is left is plain values
        cfg = OmegaConf.create(OmegaConf.to_container(OmegaConf.create(data), resolve=True))
    except Exception as err:  # noqa: BLE001 (a reference to a missing key, odd keys)
        raise _untrusted(source, f"its config cannot be read ({str(err).splitlines()[0]})") from None
    from cnnbench.models.registry import checked_model_config

    try:
        checked_model_config(cfg.get("model"))
    except UserError as err:
        raise _untrusted(source, str(err).rstrip(".")) from None
    if shipped_root:  # cnnbench's own text, e.g. ${oc.env:CNNBENCH_DATA,./data}
        cfg.dataset.root = _shipped_root(dataset)
    cfg.dataset.download = False
    return cfg


def safe_name(part: Any) -> str:
    """`part` (a model or dataset name from a checkpoint) as one harmless directory-name part:
    no separators, no leading dots."""
    return re.sub(r"[^\w.=,+-]", "-", str(part)).lstrip(".")[:80] or "unnamed"
