"""Batches of uint8 images, converted, augmented and normalized on the training device.

Two loaders with one interface and one batch order:

- `DeviceLoader` (the default): the whole split is moved to the device once; every epoch draws a
  seeded permutation and each batch is gathered there. No per-sample Python work and no worker
  process: this is what keeps small models from starving.
- `StreamingLoader`, for datasets that do not fit in device memory: the split stays in host
  memory (or memory-mapped from a cache file), worker processes gather whole uint8 batches in the
  same seeded order, pinned memory makes the copy to the device asynchronous, and the conversion,
  augmentation and normalization run on the device exactly as in `DeviceLoader`.

`make_loader` picks one (`trainer.data_on_device: auto|true|false`). Given `resize_to`, both resize
each batch on the device to the model's input size (bilinear), before it is augmented.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch

from cnnbench.data.batches import Augment, BatchSource, batch_layout, blank_batch
from cnnbench.data.image_data import Split
from cnnbench.data.streaming import StreamingLoader

__all__ = ["DeviceLoader", "StreamingLoader", "batch_layout", "blank_batch", "data_fits_on_device",
           "make_loader", "split_bytes"]

# Share of the device's free memory the data may take in `data_on_device=auto`; the rest is left
# for the model, its activations and the optimizer.
DEVICE_DATA_FRACTION = 0.5
# DeviceLoader prepares a whole epoch at once (a gather in the epoch's order, conversion,
# augmentation, normalization, in chunks of EPOCH_CHUNK images) when that copy takes at most
# EPOCH_COPY_LIMIT bytes and fits beside the data; each batch is then a view, with no kernel
# launched per batch. Augmentation parameters are drawn per image, so the images are the same as
# when each batch is augmented on its own (StreamingLoader does that).
EPOCH_COPY_LIMIT = 2 << 30
EPOCH_CHUNK = 16384
FLOAT_BYTES = torch.float32.itemsize  # a prepared image's values, a soft target's


class DeviceLoader(BatchSource):
    """Iterate over (images, labels) batches of a `Split` held on `device`."""

    def __init__(self, split: Split, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None, drop_last: bool = False,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1,
                 resize_to: Sequence[int] | None = None, num_classes: int = 0) -> None:
        super().__init__(len(split), batch_size, device, mean, std, shuffle=shuffle, seed=seed,
                         augment=augment, drop_last=drop_last, channels_last=channels_last,
                         rank=rank, world_size=world_size, resize_to=resize_to,
                         num_classes=num_classes)
        images = split.images.to(device, non_blocking=True)
        if channels_last:  # stored as N x H x W x C: gathered batches are channels_last already
            images = images.contiguous(memory_format=torch.channels_last)
        self.images = images
        self.labels = split.labels.to(device, non_blocking=True)
        copy_bytes = self.epoch_bytes()
        self.whole_epoch = copy_bytes <= EPOCH_COPY_LIMIT and data_fits_on_device(copy_bytes, device)

    def epoch_bytes(self) -> int:
        """Bytes of the tensors a whole epoch prepared at once makes on the device beside the
        split: the gathered uint8 images and labels, the images as floats at the model's size
        (CIFAR at 224: 49 times their uint8 bytes) and, when batches are mixed (mixup/CutMix),
        the soft targets (N x classes floats). Under DDP each process makes its share."""
        images, labels = self.images, self.labels
        per_image = (math.prod(images.shape[1:]) * images.element_size() + labels.element_size()
                     + FLOAT_BYTES * (math.prod(self.sample_shape) + self.soft_classes))
        return self._n * per_image // self.world_size

    def warm_up(self) -> None:
        """Prepare one batch as an epoch does (gather, resize, augmentation, normalization), so the
        first epoch does not pay for its kernels' first launch; the loader's seeded random
        streams are put back afterwards. The whole epoch's buffer is allocated once, so the
        memory allocator holds it from then on."""
        saved = self.state_dict()
        n = min(self.batch_size, self._n)
        order = torch.randperm(self._n, device=self.generator.device, generator=self.generator)
        params = (self.augment.draw(n, self.aug_generator, self.device)
                  if self._per_image else None)
        self._prepare(self.images[order[:n].to(self.device)], params)
        self.load_state_dict(saved)
        if self.whole_epoch:
            torch.empty((self._n, *self.sample_shape), device=self.device, dtype=torch.float32,
                        memory_format=self.memory_format)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, params = self._epoch_draws()
        if order is not None:
            order = order.to(self.device)
        if self.whole_epoch and (self.augment is None or self._per_image):
            positions, bounds = self._epoch_share()  # (under DDP: this process's images only)
            if positions is not None:
                positions = positions.to(self.device)
                order = order[positions]
                params = None if params is None else params[positions]
            images, labels = self.images, self.labels
            if order is not None:  # the epoch's order in one gather
                images, labels = images[order], labels[order]
            n = images.shape[0]
            prepared = torch.empty((n, *self.sample_shape), device=self.device,
                                   dtype=torch.float32, memory_format=self.memory_format)
            for lo in range(0, n, EPOCH_CHUNK):  # chunks bound the temporaries' memory
                hi = min(lo + EPOCH_CHUNK, n)
                prepared[lo:hi] = self._prepare(images[lo:hi], None if params is None else params[lo:hi])
            prepared, targets = self._epoch_targets(prepared, labels, bounds)
            for lo, hi in bounds:  # every batch a view: nothing launched per batch
                yield prepared[lo:hi], targets[lo:hi]
            return
        for lo, hi in self._bounds():
            if order is None:
                images, labels = self.images[lo:hi], self.labels[lo:hi]
            else:
                index = self._mine(order[lo:hi])
                images, labels = self.images[index], self.labels[index]
            x = self._prepare(images, None if params is None else self._mine(params[lo:hi]))
            yield self._targets(x, labels, [(0, x.shape[0])], lo // self.batch_size)

    def _epoch_targets(self, prepared: torch.Tensor, labels: torch.Tensor,
                       bounds: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """A prepared epoch's batches mixed and their targets (see `_targets`), in groups of
        whole batches of about EPOCH_CHUNK images (the mixing's temporaries stay bounded)."""
        if not self.soft_classes:
            return prepared, labels
        targets = torch.empty((prepared.shape[0], self.soft_classes), device=self.device,
                              dtype=torch.float32)
        first = 0
        while first < len(bounds):
            last = first + 1
            while last < len(bounds) and bounds[last][1] - bounds[first][0] <= EPOCH_CHUNK:
                last += 1
            lo, hi = bounds[first][0], bounds[last - 1][1]
            group = [(a - lo, b - lo) for a, b in bounds[first:last]]
            mixed, targets[lo:hi] = self._targets(prepared[lo:hi], labels[lo:hi], group, first)
            prepared[lo:hi] = mixed
            first = last
        return prepared, targets


def split_bytes(*splits: Split | None) -> int:
    """Bytes the splits take as tensors (what holding them on the device costs)."""
    return sum(s.images.numel() * s.images.element_size() + s.labels.numel() * s.labels.element_size()
               for s in splits if s is not None)


def data_fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether `nbytes` of data fit in the device's free memory with room left for training."""
    if device.type != "cuda":
        return True  # CPU (and MPS, which shares host memory): the data is in that memory already
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_DATA_FRACTION * free


def make_loader(split: Split, batch_size: int, device: torch.device, mean: Sequence[float],
                std: Sequence[float], *, on_device: bool, num_workers: int = 4,
                **options) -> DeviceLoader | StreamingLoader:
    """A `DeviceLoader` when `on_device`, else a `StreamingLoader` with `num_workers` workers."""
    if on_device:
        return DeviceLoader(split, batch_size, device, mean, std, **options)
    return StreamingLoader(split, batch_size, device, mean, std, num_workers=num_workers, **options)
