"""Where the config tree (conf/) is: inside the installed package, or in a source checkout."""
from __future__ import annotations

import contextlib
import importlib.util
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Iterator

CHECKOUT_CONF = Path(__file__).resolve().parents[2] / "conf"
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


def compose_config(overrides: list[str], return_hydra_config: bool = False):
    """The train config with these overrides, composed as `cnnbench train` would (no run)."""
    from hydra import compose, initialize_config_dir, initialize_config_module

    root = hydra_config_path()
    init = (initialize_config_module(config_module=root[len("pkg://"):], version_base="1.3")
            if root.startswith("pkg://") else initialize_config_dir(root, version_base="1.3"))
    with init:
        return compose(config_name="train", overrides=overrides,
                       return_hydra_config=return_hydra_config)


def compose_checked(overrides: list[str], command: str, usage: str,
                    return_hydra_config: bool = False):
    """`compose_config` for a command that reads part of the train config (`cnnbench models`,
    `cnnbench data`): an override that does not compose is one paragraph naming the command."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cnnbench.errors import UserError

    try:
        return compose_config(overrides, return_hydra_config)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(f"`cnnbench {command} {' '.join(overrides)}` does not compose: "
                        f"{str(err).splitlines()[0].rstrip('.')}. {usage}") from None


@contextlib.contextmanager
def hydra_config_of(config: Any) -> Iterator[None]:
    """Hydra's global config set to `config` (a composed config with its `hydra` node) while
    its ${hydra:...} values are resolved; the one before it afterwards."""
    from hydra.core.hydra_config import HydraConfig

    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    hydra_config.set_config(config)
    try:
        yield
    finally:
        hydra_config.cfg = previous
