"""LeNet-5 as in seeds 001/004: conv6 k5, max-pool 2, conv16 k5, max-pool 2, FC 120, 84, out."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import common


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) in its common modern form: ReLU and max-pooling, no padding.

    On MNIST (1x28x28, 10 classes) it has 44,426 parameters. `activation`, `pool` (max|avg) and
    `padding` of the first convolution are configurable for the classic sigmoid/avg-pool variant.
    """

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 activation: str = "relu", pool: str = "max", first_padding: int | str = 0) -> None:
        super().__init__()
        pool_layer = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=first_padding),
            common.activation(activation),
            pool_layer(2, 2),
            nn.Conv2d(6, 16, kernel_size=5),
            common.activation(activation),
            pool_layer(2, 2),
        )
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "lenet", "12x12 pixels")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120), common.activation(activation),
            nn.Linear(120, 84), common.activation(activation),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
