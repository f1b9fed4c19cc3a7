"""Batches drawn from uint8 tensors that live on the training device.

The whole split is moved to the device once; every epoch draws a seeded permutation, and each
batch is converted to float, augmented and normalized on the device. There is no per-sample
Python work and no worker process: this is what keeps small models from starving.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from .image_data import Split

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class DeviceLoader:
    """Iterate over (images, labels) batches of a `Split` held on `device`."""

    def __init__(self, split: Split, batch_size: int, device: torch.device,
                 mean: tuple[float, ...], std: tuple[float, ...], *, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None, drop_last: bool = False,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        self.images = split.images.to(device, non_blocking=True)
        self.labels = split.labels.to(device, non_blocking=True)
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=device).view(shape)
        self.inv_std = (1.0 / torch.tensor(std, device=device)).view(shape)
        # Shuffling and augmentation draw from the loader's own generators, so a run's data order
        # depends on its seed alone (and resuming restores it with `state_dict`). Under DDP all
        # ranks share the order (each takes every world_size-th image of a batch) but not the
        # augmentation draws.
        gen_device = "cuda" if device.type == "cuda" else "cpu"
        self.generator = torch.Generator(device=gen_device).manual_seed(seed)
        self.aug_generator = torch.Generator(device=gen_device).manual_seed(
            seed + 1 + 7919 * rank)
        self.rank, self.world_size = rank, world_size
        if world_size > 1 and not drop_last and 0 < self.num_samples % batch_size < world_size:
            self.drop_last = True  # a last batch too small to give every rank an image

    def __len__(self) -> int:
        n = self.labels.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        return self.labels.shape[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(),
                "aug_generator": self.aug_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.aug_generator.set_state(state["aug_generator"])

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        if self.augment is not None:
            x = self.augment(x, self.aug_generator)
        x = (x - self.mean) * self.inv_std
        return x.contiguous(memory_format=self.memory_format)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.labels.shape[0]
        if self.shuffle:
            order = torch.randperm(n, device=self.generator.device, generator=self.generator)
            order = order.to(self.device)
        else:
            order = None
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, n)
            if order is None:
                images, labels = self.images[lo:hi], self.labels[lo:hi]
            else:
                index = order[lo:hi][self.rank::self.world_size]
                images, labels = self.images[index], self.labels[index]
            yield self._prepare(images), labels
