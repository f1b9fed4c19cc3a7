"""Pieces shared by the model families: activations by name and the flattened size of features."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UserError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": lambda: nn.ELU(inplace=True),
}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(f"Unknown activation '{name}'. Choose one of: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def flat_features(features: nn.Module, in_channels: int, image_size: tuple[int, int],
                  model_name: str, smallest: str) -> int:
    """Number of values `features` produces per image: derived from the input, never hard-coded.

    An input too small for the layers gives a UserError naming the model, the input and `smallest`.
    """
    try:
        with torch.no_grad():
            out = features(torch.zeros(1, in_channels, *image_size))
    except RuntimeError as err:
        raise UserError(
            f"Model '{model_name}' cannot take {in_channels}x{image_size[0]}x{image_size[1]} images: "
            f"they are too small for its convolutions and pooling (it needs at least {smallest}). "
            f"Choose a dataset with larger images or a smaller model. ({err})"
        ) from None
    if out.numel() == 0:
        raise UserError(
            f"Model '{model_name}' cannot take {in_channels}x{image_size[0]}x{image_size[1]} images: "
            f"its feature maps shrink to nothing (it needs at least {smallest})."
        )
    return out.numel()
