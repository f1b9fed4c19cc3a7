"""Pieces shared by the model families: activations by name, and the size of feature maps.

The flattened size a classifier needs is measured by running the feature extractor once on a
zero image of the dataset's shape (never hard-coded). When that input is too small, the smallest
one the layers accept is found by search and reported in an `InputTooSmall` error.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from cnnbench.errors import UserError

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),  # slope 0.1, as source 000 uses
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": lambda: nn.ELU(inplace=True),
}

SEARCH_LIMIT = 4096  # largest image side the smallest-input search tries


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise UserError(f"Unknown activation '{name}'. Choose one of: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]()


def as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


class InputTooSmall(UserError):
    """A model's convolutions and pooling shrink the input to nothing."""

    def __init__(self, model: str, channels: int, size: tuple[int, int], smallest: int | None):
        self.model, self.channels, self.size, self.smallest = model, channels, size, smallest
        need = (f"it needs at least {smallest}x{smallest} pixels" if smallest is not None
                else f"no input up to {SEARCH_LIMIT}x{SEARCH_LIMIT} pixels works")
        super().__init__(
            f"Model '{model}' cannot take {channels}x{size[0]}x{size[1]} images: its convolutions "
            f"and pooling shrink them to nothing ({need}). Choose a dataset with larger images "
            f"(e.g. dataset.image_size={smallest or 32} for synthetic data) or another model "
            f"(`cnnbench models dataset=<name>` lists which fit).")

    @property
    def reason(self) -> str:
        """A short form for tables."""
        if self.smallest is None:
            return "input too small for any size tried"
        return f"input too small: needs at least {self.smallest}x{self.smallest}"

    def renamed(self, model: str) -> InputTooSmall:
        return InputTooSmall(model, self.channels, self.size, self.smallest)


def probe(features: nn.Module, in_channels: int, size: tuple[int, int],
          device: str = "meta") -> torch.Size | None:
    """Output shape of `features` for one zero image of `size`, or None if the input is too small.

    By default shapes are worked out on PyTorch's "meta" device (no arithmetic, so probing a
    large network costs microseconds); an operation without meta support falls back to a real
    CPU pass. Either way it runs in eval mode without gradients on stand-in tensors, so weights,
    BatchNorm statistics and the random number stream are left exactly as they were.
    """
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, in_channels, *size, device=device)
            if device == "meta":
                state = {name: torch.empty_like(t, device="meta") for name, t in
                         [*features.named_parameters(), *features.named_buffers()]}
                out = torch.func.functional_call(features, state, (x,))
            else:
                out = features(x)
    except NotImplementedError:
        if device == "meta":
            return probe(features, in_channels, size, device="cpu")
        raise
    except (RuntimeError, ValueError):
        return None
    finally:
        features.train(was_training)
    return out.shape if out.numel() > 0 else None


def smallest_input(features: nn.Module, in_channels: int, limit: int = SEARCH_LIMIT) -> int | None:
    """The smallest square side `features` accepts, by doubling then binary search.

    Output sizes of convolutions and pooling never shrink as the input grows, so "accepted" is
    monotonic in the side and binary search finds the exact boundary.
    """
    def ok(side: int) -> bool:
        return probe(features, in_channels, (side, side)) is not None

    high = 1
    while not ok(high):
        if high >= limit:
            return None
        high = min(high * 2, limit)
    low = high // 2  # fails (or 0)
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high


def feature_shape(features: nn.Module, in_channels: int, image_size: tuple[int, int],
                  model_name: str) -> torch.Size:
    """Shape (1, C, H, W) of the features for this input; InputTooSmall if there are none."""
    shape = probe(features, in_channels, image_size)
    if shape is None:
        raise InputTooSmall(model_name, in_channels, image_size,
                            smallest_input(features, in_channels))
    return shape


def flat_features(features: nn.Module, in_channels: int, image_size: tuple[int, int],
                  model_name: str) -> int:
    """Number of values `features` produces per image: derived from the input, never hard-coded."""
    return feature_shape(features, in_channels, image_size, model_name).numel()
