"""Source 002's `net_1` and `net_2` (Keras): two 3x3 convolutions (32, 64), FC 128, out.

    net1: Conv2D(32, 'same', relu), Conv2D(64, 'same', relu), MaxPooling2D(2, padding='same')
    net2: Conv2D(32, 'same', relu), Conv2D(64, 'same', relu, strides=2)
    then Flatten, Dense(128, relu), Dense(classes)

Keras semantics kept: Glorot-uniform weights and zero biases (`init="keras"`, the default);
MaxPooling2D(padding='same') rounds odd sizes up (`ceil_mode=True`); the stride-2 'same'
convolution pads like TensorFlow (the extra pixel bottom/right, see keras_compat.TFSamePad2d).
Parameters: net1 on CIFAR-10 2,117,962; net1 and net2 on MNIST 1,625,866 (both reach 14x14x64).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.errors import UserError
from cnnbench.models import common
from cnnbench.models.keras_compat import TFSamePad2d, apply_init


class TwoConvNet(nn.Module):
    """`downsample="pool"` is net1 (max-pool after the convs), `"stride"` is net2 (stride-2 conv)."""

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 downsample: str = "pool", hidden: int = 128, init: str = "keras") -> None:
        super().__init__()
        if downsample == "pool":
            tail: list[nn.Module] = [
                nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=2, ceil_mode=True)]
        elif downsample == "stride":
            tail = [TFSamePad2d(3, 2), nn.Conv2d(32, 64, kernel_size=3, stride=2),
                    nn.ReLU(inplace=True)]
        else:
            raise UserError(f"model.downsample={downsample!r} is not valid: choose pool (net1) "
                            f"or stride (net2).")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True), *tail)
        name = "net1" if downsample == "pool" else "net2"
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size), name)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # Keras's softmax lives in the loss here
        )
        apply_init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
