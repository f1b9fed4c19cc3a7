"""ResNet-18 for small images (beyond the seeds): the CIFAR variant of He et al. (2016).

The stem is one 3x3 convolution (stride 1) with no max-pool, so 32x32 inputs keep their
resolution into the first stage; then four stages of two BasicBlocks (64, 128, 256, 512
channels, strides 1, 2, 2, 2), global average pooling and one Linear layer. 11,173,962
parameters on CIFAR-10, the same as torchvision's resnet18 with this stem. Initialisation as
torchvision's: Kaiming-normal (fan_out) convolutions, BatchNorm weight 1 and bias 0.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 width: int = 64) -> None:
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        cin = width
        for i, cout in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size),
                                    "resnet18")
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
