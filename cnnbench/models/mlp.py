"""Multilayer perceptrons: flatten the image, hidden fully connected layers, class scores.

`mlp` is source 001's Keras MLP (Dense 200, 150, 10; 188,660 parameters on MNIST) and
`mlp_small` source 000's PyTorch one (Linear 85, 75 with LeakyReLU(0.1)).
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from cnnbench.models import common
from cnnbench.models.keras_compat import apply_init


class MLP(nn.Sequential):
    """Flatten, then `hidden` Linear layers each followed by `activation`, then the output layer.

    `init="keras"` starts from Keras's Glorot-uniform weights and zero biases (source 001 is Keras);
    `init="torch"` keeps PyTorch's defaults (source 000 is PyTorch).
    """

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 hidden: Sequence[int] = (200, 150), activation: str = "relu",
                 dropout: float = 0.0, init: str = "torch") -> None:
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
        apply_init(self, init)
