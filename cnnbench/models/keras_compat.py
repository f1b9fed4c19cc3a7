"""Keras defaults, reproduced in PyTorch for the models whose course notebook is Keras.

Keras and PyTorch start from different places:

* weights: Keras Dense/Conv2D use Glorot-uniform kernels (limit sqrt(6 / (fan_in + fan_out)))
  and zero biases; PyTorch uses Kaiming-uniform with a=sqrt(5) and a uniform bias.
* `kernel_initializer=HeUniform()` is limit sqrt(6 / fan_in), which is PyTorch's
  `kaiming_uniform_(nonlinearity="relu")` exactly (fans count the receptive field in both).
* BatchNormalization: Keras momentum 0.99 (weight of the old running value) and epsilon 1e-3;
  PyTorch's momentum is the weight of the new value (0.1) and eps is 1e-5. Keras 0.99 is
  PyTorch 0.01.
* padding="same" with stride > 1: TensorFlow pads asymmetrically (the extra pixel of an odd
  total goes to the bottom/right), which no `nn.Conv2d(padding=...)` reproduces; `TFSamePad2d`
  does. MaxPooling2D(padding="same") with pool = stride = 2 equals `MaxPool2d(2, ceil_mode=True)`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnbench.errors import UserError

INITS = ("torch", "keras")


def batchnorm2d(channels: int) -> nn.BatchNorm2d:
    """BatchNormalization() with Keras's defaults: momentum 0.99 (PyTorch 0.01), epsilon 1e-3."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def _zero_bias(layer: nn.Module) -> None:
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def glorot_uniform_(layer: nn.Module) -> None:
    """Keras GlorotUniform kernel + zero bias (the default of Dense and Conv2D)."""
    nn.init.xavier_uniform_(layer.weight)
    _zero_bias(layer)


def he_uniform_(layer: nn.Module) -> None:
    """Keras HeUniform kernel (limit sqrt(6 / fan_in)) + zero bias."""
    nn.init.kaiming_uniform_(layer.weight, a=0.0, mode="fan_in", nonlinearity="relu")
    _zero_bias(layer)


def keras_default_init_(model: nn.Module) -> nn.Module:
    """Re-initialise every Conv2d and Linear of `model` as Keras would (Glorot uniform, zero bias)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            glorot_uniform_(layer)
    return model


def apply_init(model: nn.Module, init: str) -> nn.Module:
    """`init="torch"` keeps PyTorch's defaults; `init="keras"` applies Keras's (see above)."""
    if init not in INITS:
        raise UserError(f"model.init={init!r} is not valid: choose one of {', '.join(INITS)} "
                        f"(keras: Glorot-uniform weights and zero biases, as Keras layers start).")
    return keras_default_init_(model) if init == "keras" else model


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding TensorFlow's padding='same' uses along one dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFSamePad2d(nn.Module):
    """Zero-pad as TensorFlow's padding='same' does for a given kernel and stride."""

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int]) -> None:
        super().__init__()
        self.kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel[1], self.stride[1])
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel}, stride={self.stride}"
