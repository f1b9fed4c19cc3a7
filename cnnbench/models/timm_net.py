"""Any model of timm's registry by name (`model=timm model.name=convnext_atto`), shaped by the
dataset, optionally starting from pretrained weights read from disk.

timm is imported only here, and only when such a model is built. The name must be one timm
registers (`timm.list_models()`, with an optional pretrained tag: `resnet18.a1_in1k`); hub
(`hf-hub:`) and local-directory names are refused, so a stored config can choose among timm's
architectures but never make timm fetch or read a model definition. Weights are loaded by
`weights.py` as data and handed to timm as a state dict: timm then adapts them as it does its own
(the first layer summed or repeated for another channel count, position embeddings resampled
for another image size) and the classifier head is always left freshly initialized for the
dataset's classes.
"""
from __future__ import annotations

import difflib
from typing import Any, Sequence

import torch
from torch import nn

from cnnbench.errors import UserError
from cnnbench.models.meta_build import meta_build
from cnnbench.models.weights import WeightsFile, cached_weights, weights_file

LIST_HINT = "`cnnbench models --timm 'resnet*'` lists timm's models matching a pattern"
# timm's pretrained config says how many classes its head has; a value no dataset has makes
# timm drop the head's weights, whatever the file holds
NO_HEAD = -1


def timm_name(name: Any) -> str:
    """`name` if timm registers it (an architecture, optionally with a pretrained tag)."""
    import timm

    if not isinstance(name, str) or not name:
        raise UserError(f"model.name={name!r} is not a timm model name: give one, e.g. "
                        f"model=timm model.name=resnet18 ({LIST_HINT}).")
    arch, _, tag = name.partition(".")
    if ":" in name or "/" in name or not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=4, cutoff=0.6)
        maybe = f" Close names: {', '.join(close)}." if close else ""
        raise UserError(f"model.name={name!r} is not a model timm knows (only names of timm's "
                        f"registry are built, never hub or file references).{maybe} {LIST_HINT}.")
    tags = timm.list_pretrained(f"{arch}.*")
    if tag and name not in tags:
        raise UserError(f"model.name={name!r}: timm has no pretrained tag {tag!r} for {arch} "
                        f"(its tags: {', '.join(tags) or 'none'}).")
    return name


def _create(name: str, in_channels: int, image_size: Sequence[int], num_classes: int,
            options: dict[str, Any], **pretrained: Any) -> nn.Module:
    """timm.create_model with the dataset's shape; `img_size` only for models that take it."""
    import timm

    kwargs = dict(num_classes=num_classes, in_chans=in_channels, **options, **pretrained)
    try:
        return timm.create_model(name, img_size=tuple(image_size), **kwargs)
    except TypeError as err:
        if "img_size" not in str(err):
            raise
    return timm.create_model(name, **kwargs)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300].rstrip(".") if text else type(err).__name__


def _check_input(model: nn.Module, name: str, in_channels: int,
                 image_size: Sequence[int]) -> None:
    """A forward pass on the meta device: whether the model takes the dataset's images."""
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_channels, *image_size, device="meta"))
    except NotImplementedError:
        return  # an operation without a meta kernel: the real run will tell
    except Exception as err:  # noqa: BLE001 (the model's own check of its input's shape)
        reason = _first_line(err)
        shape = f"{in_channels}x{image_size[0]}x{image_size[1]}"
        error = UserError(f"timm's {name} cannot take {shape} images: {reason}. Resize them with "
                          f"dataset.image_size=... (e.g. the model's pretrained resolution, "
                          f"often 224), or choose another model ({LIST_HINT}).")
        error.reason = f"cannot take {shape} images: {reason}"  # (a cell of `cnnbench models`)
        raise error from None


def _weights(name: str, pretrained: bool | str | None) -> WeightsFile | None:
    from timm.models import get_pretrained_cfg

    if pretrained is None or pretrained is False:
        return None
    if pretrained is True:
        return cached_weights(name, get_pretrained_cfg(name))
    if isinstance(pretrained, str) and pretrained.strip():
        return weights_file(pretrained)
    raise UserError(f"model.pretrained={pretrained!r} is not valid: give the path of a weights "
                    f"file, true (weights already in the Hugging Face cache) or false.")


def _checked_tensors(file: WeightsFile, skeleton: nn.Module, name: str) -> dict[str, Any]:
    """The file's tensors, if they name every parameter of the model but its head."""
    tensors = file.state_dict()
    classifier = skeleton.pretrained_cfg.get("classifier") or ()
    classifiers = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    head = {f"{c}.{p}" for c in classifiers for p in ("weight", "bias")}
    missing = [n for n, _ in skeleton.named_parameters() if n not in tensors and n not in head]
    if missing:
        total = sum(1 for _ in skeleton.named_parameters())
        raise UserError(
            f"The weights in {file.path} do not fit timm's {name}: {len(missing)} of its {total} "
            f"parameters are not in the file (e.g. {', '.join(missing[:3])}). They are "
            f"probably the weights of another architecture: give weights saved from a {name} "
            f"(model.name must be the model the file was saved from).")
    return tensors


def _first_conv_channels(tensors: dict[str, Any], cfg: dict[str, Any]) -> int | None:
    """The input channels the file's first convolution was trained with (None: unknown)."""
    first = cfg.get("first_conv")
    first = first[0] if isinstance(first, (list, tuple)) and first else first
    weight = tensors.get(f"{first}.weight") if isinstance(first, str) else None
    return int(weight.shape[1]) if isinstance(weight, torch.Tensor) and weight.ndim == 4 else None


def timm_model(*, name: str = "resnet18", pretrained: bool | str | None = None,
               drop_rate: float = 0.0, drop_path_rate: float | None = None, in_channels: int,
               image_size: Sequence[int], num_classes: int) -> nn.Module:
    """timm's `name` for the dataset's channels, image size and classes; with `pretrained`, its
    weights from that file (or the caches), the head replaced. The model's
    `pretrained_weights` attribute records where they came from (None: a random start)."""
    name = timm_name(name)
    options = {"drop_rate": drop_rate}
    if drop_path_rate is not None:
        options["drop_path_rate"] = drop_path_rate
    file = _weights(name, pretrained)
    sizing = torch.empty(0).device.type == "meta"  # `cnnbench models` runs the model itself
    with meta_build():  # no memory and no time: names, shapes and the input check
        skeleton = _create(name, in_channels, image_size, num_classes, options)
    if not sizing:
        _check_input(skeleton, name, in_channels, image_size)
    if file is None:
        model = skeleton if sizing else _create(name, in_channels, image_size, num_classes,
                                                options)
        model.pretrained_weights = None
        return model
    tensors = _checked_tensors(file, skeleton, name)
    overlay = {"source": "timm", "state_dict": tensors, "num_classes": NO_HEAD}
    channels = _first_conv_channels(tensors, skeleton.pretrained_cfg)
    if channels is not None:
        overlay["input_size"] = (channels, *image_size)
    try:
        model = _create(name, in_channels, image_size, num_classes, options, pretrained=True,
                        pretrained_cfg_overlay=overlay)
    except (RuntimeError, ValueError, KeyError) as err:
        reason = _first_line(err)
        raise UserError(f"The weights in {file.path} do not fit timm's {name} for "
                        f"{in_channels}-channel {image_size[0]}x{image_size[1]} images: "
                        f"{reason}. Give weights saved from a {name}.") from None
    model.pretrained_weights = {**file.origin(), "channels": channels, "model": name}
    return model
