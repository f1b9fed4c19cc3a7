"""Source 000's small CNNs for CIFAR-100 (PyTorch): `cnn_simple` (model_cnn) and `cnn2` ("CNN 2.0").

Each block is Conv2d(k3, padding 1) + LeakyReLU(0.1) + MaxPool2d(2); then Flatten, one hidden
Linear layer and the output layer. The source's two models differ in the blocks (8 vs 8, 16
channels), the hidden width (128 vs 8) and the hidden activation: model_cnn uses ReLU after fc1
(its module is named "relu2"), CNN 2.0 uses LeakyReLU(0.1). PyTorch default initialisation.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common


class SmallCNN(nn.Module):
    """Conv blocks `channels`, then Linear(`hidden`) + `hidden_activation`, then the classes.

    On CIFAR-100: channels [8], hidden 128 (cnn_simple) has 275,396 parameters;
    channels [8, 16], hidden 8, leaky_relu (cnn2) has 10,492.
    """

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 channels: Sequence[int] = (8,), hidden: int = 128,
                 conv_activation: str = "leaky_relu", hidden_activation: str = "relu") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for out in channels:
            layers += [nn.Conv2d(width, out, kernel_size=3, padding=1),
                       common.activation(conv_activation), nn.MaxPool2d(kernel_size=2)]
            width = out
        self.features = nn.Sequential(*layers)
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "small_cnn")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden), common.activation(hidden_activation),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
