"""Where the config tree (conf/) is: inside the installed package, or in a source checkout."""
from __future__ import annotations

import importlib.util
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

CHECKOUT_CONF = Path(__file__).resolve().parent.parent / "conf"
CONFIG_GROUPS = ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer",
                 "evaluation")


def installed() -> bool:
    return importlib.util.find_spec("cnnbench.conf") is not None


def config_dir() -> Traversable:
    """The conf/ tree: the packaged `cnnbench.conf` when installed, else the checkout's conf/
    (running from a source tree with only PYTHONPATH set, as on a machine without an install)."""
    return resources.files("cnnbench.conf") if installed() else CHECKOUT_CONF


def hydra_config_path() -> str:
    """The same place, as Hydra's `config_path` wants it."""
    return "pkg://cnnbench.conf" if installed() else str(CHECKOUT_CONF)


def group_options(group: str) -> list[str]:
    """The options of a config group: the names of its YAML files."""
    folder = config_dir() / group
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def config_options(groups: tuple[str, ...] = CONFIG_GROUPS) -> dict[str, list[str]]:
    """The options of each config group, read from the packaged conf/ directory."""
    return {group: group_options(group) for group in groups}
