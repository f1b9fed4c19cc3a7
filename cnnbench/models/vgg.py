"""Source 003's VGG-style network for CIFAR-10 (Keras), layer for layer.

    [Conv64-ReLU-BN, Dropout .2, Conv64-ReLU-BN, Dropout .2, MaxPool]
    [Conv128-ReLU-BN, Conv128-ReLU-BN, Dropout .3, MaxPool]
    [Conv256-ReLU-BN, Conv256-ReLU-BN, Dropout .3, MaxPool]
    Flatten, Dropout .3, Dense 1024 ReLU, Dense classes

Convolutions are 3x3 'same' with `activation='relu'` inside the Conv2D layer, so ReLU comes
before BatchNormalization, as published. As in the source: HeUniform kernels for the convolutions,
GlorotUniform for the two Dense layers, zero biases (Keras's default), and Keras's
BatchNormalization defaults (momentum 0.99, epsilon 1e-3). Dropout is Keras's element-wise
Dropout (not spatial). The source's text says "32x32 -> 16x16 -> 8x8", but its code has three
MaxPooling2D layers, so a 32x32 input ends at 4x4 (Flatten 4096); we follow the code.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.models import common
from cnnbench.models.keras_compat import batchnorm2d, glorot_uniform_, he_uniform_


def _conv_relu_bn(cin: int, cout: int) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel_size=3, padding=1)  # 'same' for k3, stride 1
    he_uniform_(conv)
    return [conv, nn.ReLU(inplace=True), batchnorm2d(cout)]


class VGG(nn.Module):
    """Three double conv blocks (`widths`) with BatchNorm and dropout as in source 003, FC `hidden`.

    On CIFAR-10 it has 5,352,778 trainable parameters; Keras's summary would also count the 1,792
    BatchNorm moving means/variances (non-trainable), which PyTorch keeps as buffers.
    """

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 widths: Sequence[int] = (64, 128, 256), hidden: int = 1024) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.features = nn.Sequential(
            *_conv_relu_bn(in_channels, w1), nn.Dropout(0.2),
            *_conv_relu_bn(w1, w1), nn.Dropout(0.2),
            nn.MaxPool2d(2),
            *_conv_relu_bn(w1, w2), *_conv_relu_bn(w2, w2), nn.Dropout(0.3),
            nn.MaxPool2d(2),
            *_conv_relu_bn(w2, w3), *_conv_relu_bn(w3, w3), nn.Dropout(0.3),
            nn.MaxPool2d(2),
        )
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size), "vgg")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(flat, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        glorot_uniform_(self.classifier[2])
        glorot_uniform_(self.classifier[4])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
