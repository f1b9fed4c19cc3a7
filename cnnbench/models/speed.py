"""Small BN-ReLU CNNs for speed runs (experiment=mnist_speedrun, fashion_speedrun).

Blocks of `convs` 3x3 convolutions (no bias) + BatchNorm + ReLU, each block closed by a 2x2
max-pool; then a global max- or average-pool and one linear layer (or, with head=flatten, the
flattened features). Options:
* residual=true: a block's first convolution sets its width and each following pair of
  convolutions adds its input back (x + f(x)), the ResNet way;
* last_pool=false: no pool after the last block, so the global pool sees its whole map (a 7x7
  map pooled 2x2 loses its last row and column).
Nothing in it costs time without buying accuracy: no dropout by default, no wide fully
connected layers.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common

HEADS = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class Residual(nn.Module):
    """x + body(x): two conv-BN-ReLU of the same width around an identity shortcut."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(width, width), *conv_bn_relu(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def block(c_in: int, width: int, convs: int, residual: bool) -> list[nn.Module]:
    """One block's convolutions: all plain, or one that sets the width, then residual pairs."""
    if not residual:
        layers = conv_bn_relu(c_in, width)
        for _ in range(convs - 1):
            layers += conv_bn_relu(width, width)
        return layers
    if convs % 2 == 0:
        raise ValueError(f"model.convs must be odd with model.residual=true (one convolution "
                         f"that sets the width, then pairs around a shortcut), got {convs}")
    return [*conv_bn_relu(c_in, width), *(Residual(width) for _ in range(convs // 2))]


class SpeedCNN(nn.Module):
    """widths=(32, 64, 128), convs=1: the 32-64-128 net of the MNIST speed run;
    widths=(64, 128, 256), convs=2: the double-conv net of the Fashion-MNIST run."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 widths: Sequence[int] = (32, 64, 128), convs: int = 1, head: str = "max",
                 dropout: float = 0.0, residual: bool = False, last_pool: bool = True) -> None:
        super().__init__()
        if head not in (*HEADS, "flatten"):
            raise ValueError(f"model.head must be max, avg or flatten, got {head!r}")
        layers: list[nn.Module] = []
        c = in_channels
        for i, width in enumerate(widths):
            layers += block(c, width, convs, residual)
            if last_pool or i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = width
        if head in HEADS:
            layers.append(HEADS[head](1))
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "speed_cnn")
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = nn.Linear(flat, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))
