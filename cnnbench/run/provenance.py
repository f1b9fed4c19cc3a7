"""What a run records about itself: the library versions, its identifying options, and the
stand-in for the file sinks on processes other than rank 0."""
from __future__ import annotations

import platform
from typing import Any, Mapping

import torch
from omegaconf import DictConfig

from cnnbench import __version__
from cnnbench.settings.run_options import RUN_OPTIONS


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import hydra

    try:  # from the package metadata: importing torchvision costs a second or more at start-up
        torchvision_version = version("torchvision")
    except PackageNotFoundError:
        torchvision_version = "none"
    return {"cnnbench": __version__, "torch": torch.__version__,
            "torchvision": torchvision_version, "hydra": hydra.__version__,
            "python": platform.python_version(),
            "cuda": torch.version.cuda or "none"}


def run_options(choices: Mapping[str, str], cfg: DictConfig) -> dict[str, Any]:
    """What distinguishes this run: the chosen config options and the main hyperparameters
    (the `option` column of the table of run options, settings/run_options.py, in its order)."""
    options = {row.option: choices.get(row.path) if row.group else _required(cfg, row.path)
               for row in RUN_OPTIONS}
    if options.get("model") == "timm":  # which of timm's models: timm/resnet18
        options["model"] = f"timm/{cfg.model.get('name')}"
    return options


def _required(cfg: DictConfig, path: str) -> Any:
    """The value at the dotted `path`; a key removed from the config (`~trainer.epochs`) raises
    OmegaConf's error, which the command shows as one paragraph naming the key."""
    node: Any = cfg
    for part in path.split("."):
        node = getattr(node, part)
    return node


class NullSink:
    """Stands in for the file sinks on processes other than rank 0."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None
