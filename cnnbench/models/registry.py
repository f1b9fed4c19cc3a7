"""Models by name: each `conf/model/<name>.yaml` names a class by `_target_` and sets its options.

`build_model` is the one place a model is made from its config and the dataset's shape; the
dataset gives `in_channels`, `image_size` and `num_classes`, never the user.

A model config may come from a file someone else wrote (the config stored in a checkpoint, a run
directory's overrides), so it is treated as data: `_target_` must be one of cnnbench's own model
classes (MODEL_CLASSES), and the options must be plain values that the class's `__init__`
declares. Nothing else is imported or called.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf
from torch import nn

from cnnbench.errors import UserError, is_out_of_memory
from cnnbench.models.alexnet import AlexNetCIFAR, AlexNetSmall
from cnnbench.models.common import InputTooSmall
from cnnbench.models.lenet import LeNet5
from cnnbench.models.mlp import MLP
from cnnbench.models.resnet import ResNet18
from cnnbench.models.small_cnn import SmallCNN
from cnnbench.models.speed import SpeedCNN
from cnnbench.models.timm_net import timm_model
from cnnbench.models.twoconv import TwoConvNet
from cnnbench.models.vgg import VGG
from cnnbench.settings.config_files import config_dir
from cnnbench.settings.plain import plain_options

# The only classes a model config can name: cnnbench's own (the `_target_`s of conf/model/*.yaml),
# and the builder of timm's registered models (conf/model/timm.yaml; timm_net.py checks the name).
MODEL_CLASSES: dict[str, Callable[..., nn.Module]] = {
    "cnnbench.models.alexnet.AlexNetCIFAR": AlexNetCIFAR,
    "cnnbench.models.alexnet.AlexNetSmall": AlexNetSmall,
    "cnnbench.models.lenet.LeNet5": LeNet5,
    "cnnbench.models.mlp.MLP": MLP,
    "cnnbench.models.resnet.ResNet18": ResNet18,
    "cnnbench.models.small_cnn.SmallCNN": SmallCNN,
    "cnnbench.models.speed.SpeedCNN": SpeedCNN,
    "cnnbench.models.timm_net.timm_model": timm_model,
    "cnnbench.models.twoconv.TwoConvNet": TwoConvNet,
    "cnnbench.models.vgg.VGG": VGG,
}
# Given by the dataset, never by the config.
DATASET_ARGS = ("in_channels", "image_size", "num_classes")


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
    """The comment that opens the model's config, all its lines joined: what it is and where it
    comes from."""
    lines = []
    for line in (_model_dir() / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            if lines or line.strip():
                break
            continue
        lines.append(line.lstrip("# ").strip())
    return " ".join(line for line in lines if line)


def model_class(model_cfg: Mapping[str, Any]) -> Callable[..., nn.Module]:
    """The class `model_cfg["_target_"]` names, if it is one of MODEL_CLASSES."""
    target = model_cfg.get("_target_")
    if target not in MODEL_CLASSES:
        raise UserError(
            f"model._target_={target!r} is refused: a model config can only name one of "
            f"cnnbench's own model classes ({', '.join(sorted(MODEL_CLASSES))}), so that a config "
            f"from a checkpoint or a run directory cannot make cnnbench import or call anything "
            f"else. Choose a model with model=<name> (`cnnbench models` lists them).")
    return MODEL_CLASSES[target]


def checked_model_config(model_cfg: DictConfig | Mapping[str, Any]
                         ) -> tuple[Callable[..., nn.Module], dict[str, Any]]:
    """The class and the checked keyword options of `model_cfg`; a UserError names what is
    refused (see the module docstring). Imports and calls nothing."""
    if isinstance(model_cfg, DictConfig):
        model_cfg = OmegaConf.to_container(model_cfg, resolve=True)
    if not isinstance(model_cfg, Mapping):
        raise UserError(f"The model config must be a mapping of options, not {model_cfg!r}.")
    cls = model_class(model_cfg)
    options = {k: v for k, v in model_cfg.items() if k != "_target_"}
    return cls, plain_options(cls, options, "model", reserved=DATASET_ARGS)


def build_model(model_cfg: DictConfig | Mapping[str, Any], *, in_channels: int,
                image_size: Sequence[int], num_classes: int, name: str | None = None,
                pretrained: bool = True) -> nn.Module:
    """The model of `model_cfg`, shaped by the dataset. Errors name the model by `name`.
    `pretrained=False` leaves out the weights `model.pretrained` names: for a model whose
    weights come next from a checkpoint (resume, eval, predict, export)."""
    cls, kwargs = checked_model_config(model_cfg)
    if not pretrained and "pretrained" in kwargs:
        kwargs["pretrained"] = None
    try:
        return cls(in_channels=in_channels, image_size=list(image_size),
                   num_classes=num_classes, **kwargs)
    except InputTooSmall as err:
        raise (err.renamed(name) if name else err) from None
    except UserError:
        raise
    except Exception as err:  # a value the class cannot use, e.g. a bad activation
        if is_out_of_memory(err):
            raise  # the machine's size, not the config: the error boundary's paragraph
        raise UserError(f"The model config{f' {name!r}' if name else ''} could not be built: "
                        f"{err}. Check the model.* options (`cnnbench train --cfg job` shows "
                        f"them).") from None
