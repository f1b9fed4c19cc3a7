"""What both loaders share: the seeded batch order, and the conversion of a uint8 batch on the
training device (resize, augmentation, normalization) into the layout the model was compiled for.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


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


class BatchSource:
    """What both loaders share: the seeded order, and the on-device conversion of a uint8 batch."""

    def __init__(self, num_samples: int, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool, seed: int,
                 augment: Augment | None, drop_last: bool, channels_last: bool,
                 rank: int = 0, world_size: int = 1, resize_to: Sequence[int] | None = None,
                 num_classes: int = 0) -> None:
        self._n = num_samples
        self.resize_to = None if resize_to is None else tuple(int(v) for v in resize_to)
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.set_augment(augment)
        # With mixup/CutMix the labels become soft targets (N x classes, float) for the whole run
        # (as one-hot rows in epochs without augmentation), so the captured step keeps its shape.
        self.soft_classes = num_classes if getattr(augment, "mixes", False) else 0
        if getattr(augment, "mixes", False) and num_classes < 1:
            raise ValueError("mixing batches (mixup/CutMix) needs the number of classes")
        self._mix_params: torch.Tensor | None = None  # this epoch's, drawn with its order
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
        self._mixes = bool(getattr(augment, "mixes", False))

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
        image in the epoch's order; None without per-image augmentation), in this order; then
        the mixing numbers of its batches (`_mix_params`)."""
        order = None
        if self.shuffle:
            order = torch.randperm(self._n, device=self.generator.device, generator=self.generator)
        params = (self.augment.draw(self._n, self.aug_generator, self.device)
                  if self._per_image else None)
        self._mix_params = (self.augment.draw_mix(len(self), self.aug_generator, self.device)
                            if self._mixes else None)
        return order, params

    def blank_targets(self, size: int) -> torch.Tensor:
        """Zero targets of a batch of `size`: labels, or soft targets when batches are mixed."""
        if self.soft_classes:
            return torch.zeros(size, self.soft_classes, device=self.device)
        return torch.zeros(size, dtype=torch.long, device=self.device)

    def _targets(self, x: torch.Tensor, labels: torch.Tensor, bounds: Sequence[tuple[int, int]],
                 first: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batches x[lo:hi] of `bounds` (batch numbers from `first` on) mixed, with their soft
        targets; one-hot targets in an epoch without mixing; as they are without soft targets."""
        if not self.soft_classes:
            return x, labels
        if not self._mixes or self._mix_params is None:
            return x, F.one_hot(labels, self.soft_classes).to(x.dtype)
        u = self._mix_params[first:first + len(bounds)]
        mixed, targets = self.augment.mix_batches(x, labels, bounds, u, self.soft_classes)
        return batch_layout(mixed, self.memory_format), targets

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
