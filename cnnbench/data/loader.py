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

import itertools
import math
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from cnnbench.data.image_data import Split

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

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


def batch_layout(x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """`x` dense in `memory_format`, with the strides `torch.empty(..., memory_format=...)` gives.

    For a dimension of size 1 (one channel, a batch of one) several strides describe the same
    memory, and `.contiguous()` may keep any of them. torch.compile specializes on strides, so a
    batch whose strides differ from the ones the model was compiled (and the step captured) with
    would compile it again; every batch, and the warm-up's blank batches, take these strides."""
    x = x.contiguous(memory_format=memory_format)
    strides = torch.empty(x.shape, device="meta", memory_format=memory_format).stride()
    return x if x.stride() == strides else x.as_strided(x.shape, strides, x.storage_offset())


def blank_batch(shape: Sequence[int], device: torch.device,
                memory_format: torch.memory_format) -> torch.Tensor:
    """A batch of zeros laid out as the loaders lay out their batches (see `batch_layout`)."""
    return batch_layout(torch.zeros(tuple(shape), device=device), memory_format)


class _BatchSource:
    """What both loaders share: the seeded order, and the on-device conversion of a uint8 batch."""

    def __init__(self, num_samples: int, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool, seed: int,
                 augment: Augment | None, drop_last: bool, channels_last: bool,
                 rank: int = 0, world_size: int = 1, resize_to: Sequence[int] | None = None) -> None:
        self._n = num_samples
        self.resize_to = None if resize_to is None else tuple(int(v) for v in resize_to)
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.set_augment(augment)
        self.drop_last = drop_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        shape = (1, -1, 1, 1)
        mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(shape)
        std_t = torch.tensor(std, device=device, dtype=torch.float32).view(shape)
        self.mean, self.inv_std = mean_t, 1.0 / std_t
        # uint8 -> normalized in one fused multiply-add when there is no augmentation
        self._scale, self._shift = 1.0 / (255.0 * std_t), -mean_t / std_t
        # Shuffling and augmentation draw from the loader's own generators, so a run's data order
        # depends on its seed alone (and resuming restores it with `state_dict`). Under DDP all
        # ranks share the order (each takes every world_size-th image of a batch). They also
        # share the per-image augmentation draws (`draw` covers the whole epoch; each rank takes
        # the rows of its own images), so every image is augmented exactly as in a one-process
        # run with the same seed. A per-batch augmentation callable sees only the rank's images,
        # so there each rank needs a generator of its own (else ranks would repeat one another).
        gen_device = "cuda" if device.type == "cuda" else "cpu"
        self.generator = torch.Generator(device=gen_device).manual_seed(seed)
        self.aug_generator = torch.Generator(device=gen_device).manual_seed(
            seed + 1 + (0 if self._per_image else 7919 * rank))
        self.rank, self.world_size = rank, world_size
        if world_size > 1 and not drop_last and 0 < num_samples % batch_size < world_size:
            self.drop_last = True  # a last batch too small to give every rank an image

    def set_augment(self, augment: Augment | None) -> None:
        """Augment the batches from the next epoch on with `augment` (None: not at all)."""
        self.augment = augment
        # BatchAugment draws the numbers of all the epoch's images at once (`draw`) and applies
        # them to any slice (`apply`); any other callable is called per batch with the generator.
        self._per_image = augment is not None and hasattr(augment, "draw") and hasattr(augment, "apply")

    def __len__(self) -> int:
        n = self._n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        return self._n

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """C x H x W of one prepared image: what the model sees (`resize_to` when set)."""
        channels, height, width = self.images.shape[1:]
        return (channels, *self.resize_to) if self.resize_to else (channels, height, width)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(),
                "aug_generator": self.aug_generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.aug_generator.set_state(state["aug_generator"])

    def _epoch_draws(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """This epoch's permutation (None: the stored order) and augmentation numbers (one row per
        image in the epoch's order; None without per-image augmentation), in this order."""
        order = None
        if self.shuffle:
            order = torch.randperm(self._n, device=self.generator.device, generator=self.generator)
        params = (self.augment.draw(self._n, self.aug_generator, self.device)
                  if self._per_image else None)
        return order, params

    def _mine(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's share of a shuffled batch (every world_size-th image; all of it without DDP
        or without shuffling: evaluation loaders give every rank the whole batch)."""
        return t if self.world_size == 1 or not self.shuffle else t[self.rank::self.world_size]

    def _bounds(self) -> Iterator[tuple[int, int]]:
        for b in range(len(self)):
            yield b * self.batch_size, min((b + 1) * self.batch_size, self._n)

    def _epoch_share(self) -> tuple[torch.Tensor | None, list[tuple[int, int]]]:
        """This rank's positions in the epoch's order (None: all of them) and its batches'
        bounds within them: what `_mine` takes from each batch, for the whole epoch at once."""
        bounds = list(self._bounds())
        if self.world_size == 1 or not self.shuffle:
            return None, bounds
        positions = [self._mine(torch.arange(lo, hi)) for lo, hi in bounds]
        ends = list(itertools.accumulate(len(p) for p in positions))
        return torch.cat(positions), list(zip([0, *ends[:-1]], ends))

    def _resized(self, x: torch.Tensor) -> torch.Tensor:
        """Float N x C x H x W at `resize_to` (bilinear; antialiased where it shrinks)."""
        if self.resize_to is None or tuple(x.shape[-2:]) == self.resize_to:
            return x
        shrinks = any(new < old for new, old in zip(self.resize_to, x.shape[-2:]))
        return F.interpolate(x, size=self.resize_to, mode="bilinear", align_corners=False,
                             antialias=shrinks)

    def _prepare(self, images: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 N x C x H x W on the device -> resized, augmented, normalized float."""
        x = self._resized(images.float())
        if self.augment is None:
            x = torch.addcmul(self._shift, x, self._scale)
        else:
            x = x.mul_(1.0 / 255.0)
            x = (self.augment.apply(x, params) if self._per_image
                 else self.augment(x, self.aug_generator))
            x = (x - self.mean) * self.inv_std
        return batch_layout(x, self.memory_format)


class DeviceLoader(_BatchSource):
    """Iterate over (images, labels) batches of a `Split` held on `device`."""

    def __init__(self, split: Split, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None, drop_last: bool = False,
                 channels_last: bool = False, rank: int = 0, world_size: int = 1,
                 resize_to: Sequence[int] | None = None) -> None:
        super().__init__(len(split), batch_size, device, mean, std, shuffle=shuffle, seed=seed,
                         augment=augment, drop_last=drop_last, channels_last=channels_last,
                         rank=rank, world_size=world_size, resize_to=resize_to)
        images = split.images.to(device, non_blocking=True)
        if channels_last:  # stored as N x H x W x C: gathered batches are channels_last already
            images = images.contiguous(memory_format=torch.channels_last)
        self.images = images
        self.labels = split.labels.to(device, non_blocking=True)
        # the gathered uint8 images and their floats at the model's size (CIFAR at 224: 49 times)
        copy_bytes = images.numel() * images.element_size() + 4 * len(split) * math.prod(self.sample_shape)
        copy_bytes //= world_size  # under DDP each process prepares its share of the epoch
        self.whole_epoch = copy_bytes <= EPOCH_COPY_LIMIT and data_fits_on_device(copy_bytes, device)

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
            for lo, hi in bounds:  # every batch a view: nothing launched per batch
                yield prepared[lo:hi], labels[lo:hi]
            return
        for lo, hi in self._bounds():
            if order is None:
                images, labels = self.images[lo:hi], self.labels[lo:hi]
            else:
                index = self._mine(order[lo:hi])
                images, labels = self.images[index], self.labels[index]
            yield self._prepare(images, None if params is None else self._mine(params[lo:hi])), labels


class _BatchGather(torch.utils.data.Dataset):
    """A 'dataset' whose items are whole batches: item `index` (a tensor of sample indices)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class _EpochBatches(torch.utils.data.Sampler):
    """Yields the index tensors of the current epoch's batches; set before each epoch, so the
    same (persistent) workers serve every epoch."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class StreamingLoader(_BatchSource):
    """Like `DeviceLoader`, but the split stays in host memory and streams through a DataLoader.

    Batches are the same as `DeviceLoader`'s for the same seed: the same permutation (drawn from
    the same generator) is cut into the same batches; workers only gather uint8 rows.
    """

    def __init__(self, split: Split, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None, drop_last: bool = False,
                 channels_last: bool = False, num_workers: int = 4, rank: int = 0,
                 world_size: int = 1, resize_to: Sequence[int] | None = None) -> None:
        super().__init__(len(split), batch_size, device, mean, std, shuffle=shuffle, seed=seed,
                         augment=augment, drop_last=drop_last, channels_last=channels_last,
                         rank=rank, world_size=world_size, resize_to=resize_to)
        self.images, self.labels = split.images, split.labels
        self.num_workers = num_workers
        self._sampler = _EpochBatches()
        self._loader: torch.utils.data.DataLoader | None = None

    def _data_loader(self) -> torch.utils.data.DataLoader:
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                _BatchGather(self.images, self.labels), sampler=self._sampler, batch_size=None,
                num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                persistent_workers=self.num_workers > 0,
                prefetch_factor=4 if self.num_workers > 0 else None)
        return self._loader

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, params = self._epoch_draws()
        order = order.cpu() if order is not None else torch.arange(self._n)
        bounds = list(self._bounds())
        self._sampler.batches = [self._mine(order[lo:hi]) for lo, hi in bounds]
        for (lo, hi), (images, labels) in zip(bounds, self._data_loader()):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            yield self._prepare(images, None if params is None else self._mine(params[lo:hi])), labels


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
