"""Multilayer perceptron: flatten the image, hidden fully connected layers, class scores."""
from __future__ import annotations

from typing import Sequence

from torch import nn

from . import common


class MLP(nn.Sequential):
    """Flatten, then `hidden` Linear layers each followed by `activation`, then the output layer."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 hidden: Sequence[int] = (200, 150), activation: str = "relu",
                 dropout: float = 0.0) -> None:
        h, w = common.as_size(image_size)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * h * w
        for size in hidden:
            layers += [nn.Linear(width, size), common.activation(activation)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
