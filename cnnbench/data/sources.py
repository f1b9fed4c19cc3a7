"""Where each dataset comes from: files under a data root (torchvision's layout), or memory.

Every loader returns an `ImageData` of uint8 tensors. Files are read once; the training loop never
touches the disk again. Each source is a module of its own (mnist, cifar, synthetic, folder);
`load_dataset` is the one way in.
"""
from __future__ import annotations

from typing import Callable

from cnnbench.data.cifar import load_cifar
from cnnbench.data.image_data import ImageData
from cnnbench.data.mnist import load_fashion_mnist, load_mnist
from cnnbench.data.sizes import AS_STORED, pixel_size
from cnnbench.data.synthetic import load_synthetic
from cnnbench.errors import UserError

__all__ = ["LOADERS", "RESIZED_ON_DEVICE", "load_dataset", "load_mnist"]

LOADERS: dict[str, Callable[..., ImageData]] = {
    "mnist": lambda root=None, download=True, **_: load_mnist(root, download),
    "fashion_mnist": lambda root=None, download=True, **_: load_fashion_mnist(root, download),
    "cifar10": lambda root=None, download=True, **_: load_cifar("cifar10", root, download),
    "cifar100": lambda root=None, download=True, **_: load_cifar("cifar100", root, download),
    "synthetic": lambda root=None, download=False, **options: load_synthetic(**options),
    "imagefolder": lambda root=None, download=False, **options: _imagefolder(**options),
}


def _imagefolder(**options) -> ImageData:
    from cnnbench.data.folder import load_imagefolder

    return load_imagefolder(**options)


# Datasets whose image size comes from their files: `image_size` (None: as stored) resizes their
# batches on the training device. imagefolder decodes at its image_size, synthetic makes them so.
RESIZED_ON_DEVICE = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def load_dataset(name: str, **options) -> ImageData:
    """Load the dataset `name` (a key of LOADERS) with its config options."""
    if name not in LOADERS:
        raise UserError(f"Unknown dataset '{name}'. Known datasets: {', '.join(sorted(LOADERS))}.")
    if name not in RESIZED_ON_DEVICE:
        return LOADERS[name](**options)
    size = options.pop("image_size", None)
    if size is not None:
        size = pixel_size(size, hint=AS_STORED)
    return LOADERS[name](**options).resized(size)
