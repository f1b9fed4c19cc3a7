"""`StreamingLoader`: for datasets that do not fit in device memory, the split stays in host memory
(or memory-mapped from a cache file) and worker processes gather whole uint8 batches in the
loaders' seeded order; the conversion runs on the device as in `DeviceLoader`."""
from __future__ import annotations

from typing import Iterator, Sequence

import torch

from cnnbench.data.batches import Augment, BatchSource
from cnnbench.data.image_data import Split


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


class StreamingLoader(BatchSource):
    """Like `DeviceLoader`, but the split stays in host memory and streams through a DataLoader.

    Batches are the same as `DeviceLoader`'s for the same seed: the same permutation (drawn from
    the same generator) is cut into the same batches; workers only gather uint8 rows.
    """

    def __init__(self, split: Split, batch_size: int, device: torch.device,
                 mean: Sequence[float], std: Sequence[float], *, shuffle: bool = False,
                 seed: int = 0, augment: Augment | None = None, drop_last: bool = False,
                 channels_last: bool = False, num_workers: int = 4, rank: int = 0,
                 world_size: int = 1, resize_to: Sequence[int] | None = None,
                 num_classes: int = 0) -> None:
        super().__init__(len(split), batch_size, device, mean, std, shuffle=shuffle, seed=seed,
                         augment=augment, drop_last=drop_last, channels_last=channels_last,
                         rank=rank, world_size=world_size, resize_to=resize_to,
                         num_classes=num_classes)
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
        for b, ((lo, hi), (images, labels)) in enumerate(zip(bounds, self._data_loader())):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            x = self._prepare(images, None if params is None else self._mine(params[lo:hi]))
            yield self._targets(x, labels, [(0, x.shape[0])], b)
