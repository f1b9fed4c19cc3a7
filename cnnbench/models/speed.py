"""Small BN-ReLU CNNs for speed runs (experiment=mnist_speedrun, fashion_speedrun).

Blocks of `convs` 3x3 convolutions (no bias) + BatchNorm + ReLU, each block closed by a 2x2
max-pool; then a global max-pool and one linear layer (or, with head=flatten, the flattened
features). Nothing in it costs time without buying accuracy: no dropout by default, no wide
fully connected layers.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class SpeedCNN(nn.Module):
    """widths=(32, 64, 128), convs=1: the 32-64-128 net of the MNIST speed run;
    widths=(64, 128, 256), convs=2: the double-conv net of the Fashion-MNIST run."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 widths: Sequence[int] = (32, 64, 128), convs: int = 1, head: str = "max",
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in widths:
            for _ in range(convs):
                layers += conv_bn_relu(c, width)
                c = width
            layers.append(nn.MaxPool2d(2))
        if head == "max":
            layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
        elif head != "flatten":
            raise ValueError(f"model.head must be max or flatten, got {head!r}")
        else:
            layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "speed_cnn")
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = nn.Linear(flat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))
