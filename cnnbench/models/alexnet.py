"""AlexNet, as the two PyTorch seeds adapt it to 32x32 images (PyTorch default initialisation).

* `alexnet` is source 004's AlexNetCIFAR: convs 64-192-384-256-256 (k3, padding 1), max-pool 2
  after the 1st, 2nd and 5th, AdaptiveAvgPool2d(6x6), then Dropout, 4096, Dropout, 4096, out.
* `alexnet_small` is source 000's: convs 96 (k3, no padding), 256, 384, 384, 256 (k3, 'same'),
  max-pools 2, 2 and 3, then 4096, Dropout, 4096, Dropout, out (dropout after each ReLU).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common


class AlexNetCIFAR(nn.Module):
    """Source 004's AlexNetCIFAR. Its 6x6 adaptive pooling fixes the classifier at 256*6*6 inputs
    for any image size that survives the three max-pools (8x8 or larger)."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        flat = common.flat_features(nn.Sequential(self.features, self.avgpool), in_channels,
                                    common.as_size(image_size), "alexnet")
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(flat, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNetSmall(nn.Module):
    """Source 000's reduced AlexNet: small kernels, no strides; on 32x32 the features are 256x2x2."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(96, 256, kernel_size=3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=3),
        )
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "alexnet_small")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
