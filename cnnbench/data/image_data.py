"""The in-memory form of a dataset: uint8 image tensors plus what a model needs to know."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from cnnbench.errors import UserError


def channel_mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255).transpose(0, 1).flatten(1)
        total += x.sum(1)
        squares += (x * x).sum(1)
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean ** 2).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


@dataclass
class Split:
    """Images as uint8 N x C x H x W and labels as int64 N."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])


@dataclass
class ImageData:
    """A dataset held in memory, with its metadata (shape, classes, normalization).

    `resize_to` (height, width), when set, is the size the model sees: the loaders resize every
    batch to it on the training device; the images stay stored at `stored_size`."""

    name: str
    train: Split
    test: Split
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    val: Split | None = None
    resize_to: tuple[int, int] | None = None
    source: Path | None = None  # the folder its files were read from (None: made in memory)
    shipped: bool = False       # `source` is the copy shipped inside the package

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def stored_size(self) -> tuple[int, int]:
        return tuple(self.train.images.shape[2:4])

    @property
    def image_size(self) -> tuple[int, int]:
        """The size the model sees: `resize_to` when set, else the stored size."""
        return self.resize_to or self.stored_size

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def resized(self, size: tuple[int, int] | None) -> ImageData:
        """This dataset with its batches resized to `size` (None, or the stored size: not at all)."""
        size = None if size is None or tuple(size) == self.stored_size else tuple(size)
        return replace(self, resize_to=size)

    def with_validation(self, fraction: float, seed: int) -> ImageData:
        """Hold out `fraction` of the training set (a seeded random split) for validation: at
        least one image, and never all of them (a UserError says so before anything trains)."""
        if fraction <= 0:
            return replace(self, val=None)
        n = len(self.train)
        n_val = max(1, int(round(n * fraction)))
        if n_val >= n:
            raise UserError(nothing_left_to_train(fraction, n, n_val))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return replace(self, train=self.train.subset(order[n_val:]),
                       val=self.train.subset(order[:n_val]))


def nothing_left_to_train(fraction: float, n: int, n_val: int) -> str:
    """Why a validation split of `fraction` cannot be held out of `n` training images."""
    if n < 2:
        return (f"trainer.val_split={fraction:g} asks for a validation split, but the training set "
                f"has {n} image{'' if n == 1 else 's'}: too few to hold one out and still train. "
                f"Set trainer.val_split=0 to train without a validation split, or give the "
                f"dataset more training images.")
    return (f"trainer.val_split={fraction:g} holds out {n_val} of the {n} training images for "
            f"validation, which leaves none to train on. Lower it (e.g. trainer.val_split=0.1), "
            f"set trainer.val_split=0 to train on all {n} without a validation split, or give the "
            f"dataset more training images.")
