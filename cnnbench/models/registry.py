"""Models by name: each `conf/model/<name>.yaml` names a class by `_target_` and sets its options.

`build_model` is the one place a model is made from its config and the dataset's shape; the
dataset gives `in_channels`, `image_size` and `num_classes`, never the user.
"""
from __future__ import annotations

from ..config_files import config_dir
from typing import Any, Mapping, Sequence

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ..errors import UserError
from .common import InputTooSmall


def _model_dir():
    return config_dir() / "model"


def model_names() -> list[str]:
    """Every model config shipped in conf/model/, sorted."""
    return sorted(p.name[:-5] for p in _model_dir().iterdir() if p.name.endswith(".yaml"))


def model_config(name: str) -> DictConfig:
    if name not in model_names():
        raise UserError(f"Unknown model '{name}'. Known models: {', '.join(model_names())}.")
    return OmegaConf.create((_model_dir() / f"{name}.yaml").read_text())


def model_summary(name: str) -> str:
    """The first comment line of the model's config: what it is and where it comes from."""
    for line in (_model_dir() / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def build_model(model_cfg: DictConfig | Mapping[str, Any], *, in_channels: int,
                image_size: Sequence[int], num_classes: int, name: str | None = None) -> nn.Module:
    """The model of `model_cfg`, shaped by the dataset. Errors name the model by `name`."""
    try:
        return instantiate(model_cfg, in_channels=in_channels, image_size=list(image_size),
                           num_classes=num_classes, _convert_="all")
    except Exception as err:  # Hydra wraps what the constructor raised
        cause = err if isinstance(err, UserError) else (err.__cause__ or err)
        if isinstance(cause, InputTooSmall) and name:
            raise cause.renamed(name) from None
        if isinstance(cause, UserError):
            raise cause from None
        raise UserError(f"The model config{f' {name!r}' if name else ''} could not be built: "
                        f"{cause}. Check the model.* options (`cnnbench train --cfg job` shows "
                        f"them).") from None
