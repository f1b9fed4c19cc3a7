"""LeNet-5: conv6 k5, pool 2, conv16 k5, pool 2, FC 120, 84, out (sources 000, 001, 004)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.errors import UserError
from cnnbench.models import common
from cnnbench.models.keras_compat import apply_init


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) in its common modern form: ReLU and max-pooling, no padding.

    On MNIST (1x28x28, 10 classes) it has 44,426 parameters (sources 001 and 004). `activation`,
    `pool` (max|avg) and `first_padding` (pixels, or "same") give source 000's classic variant:
    sigmoid, average pooling, first convolution padded 'same'. `init="keras"` starts from Keras's
    Glorot-uniform weights and zero biases (source 001 is Keras; sources 000/004 are PyTorch).
    """

    def __init__(self, in_channels: int, image_size: int | Sequence[int], num_classes: int,
                 activation: str = "relu", pool: str = "max", first_padding: int | str = 0,
                 init: str = "torch") -> None:
        super().__init__()
        pools = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}
        if pool not in pools:
            raise UserError(f"model.pool={pool!r} is not valid: choose max or avg.")
        pool_layer = pools[pool]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=first_padding),
            common.activation(activation),
            pool_layer(2, 2),
            nn.Conv2d(6, 16, kernel_size=5),
            common.activation(activation),
            pool_layer(2, 2),
        )
        flat = common.flat_features(self.features, in_channels, common.as_size(image_size), "lenet")
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 120), common.activation(activation),
            nn.Linear(120, 84), common.activation(activation),
            nn.Linear(84, num_classes),
        )
        apply_init(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
