"""Where each dataset comes from: files under a data root (torchvision's layout), or memory.

Every loader returns an `ImageData` of uint8 tensors. Files are read once; the training loop never
touches the disk again. Each source is a module of its own (mnist, cifar, synthetic, folder);
`load_dataset` is the one way in.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

from cnnbench.data.cifar import load_cifar
from cnnbench.data.image_data import ImageData
from cnnbench.data.mnist import load_fashion_mnist, load_mnist
from cnnbench.data.sizes import AS_STORED, RESIZED_ON_DEVICE, pixel_size
from cnnbench.data.synthetic import load_synthetic
from cnnbench.errors import UserError

__all__ = ["LOADERS", "RESIZED_ON_DEVICE", "check_options", "load_dataset", "load_mnist"]

LOADERS: dict[str, Callable[..., ImageData]] = {
    "mnist": lambda root=None, download=True: load_mnist(root, download),
    "fashion_mnist": lambda root=None, download=True: load_fashion_mnist(root, download),
    "cifar10": lambda root=None, download=True: load_cifar("cifar10", root, download),
    "cifar100": lambda root=None, download=True: load_cifar("cifar100", root, download),
    "synthetic": lambda root=None, download=False, **options: load_synthetic(**options),
    "imagefolder": lambda root=None, download=False, **options: _imagefolder(**options),
}


def _imagefolder(**options) -> ImageData:
    from cnnbench.data.folder import load_imagefolder

    return load_imagefolder(**options)


def _options_of(name: str) -> list[str]:
    """The dataset.* keys dataset `name` reads: root, download, image_size and its loader's."""
    if name == "synthetic":
        own = inspect.signature(load_synthetic).parameters
    elif name == "imagefolder":
        from cnnbench.data.folder import load_imagefolder

        own = inspect.signature(load_imagefolder).parameters
    else:
        own = {}
    named = {k for k, v in own.items() if v.kind is not inspect.Parameter.VAR_KEYWORD}
    return sorted({"root", "download", "image_size", *named} - {"exclude"})


def check_options(name: str, options: Mapping[str, object]) -> None:
    """A UserError (one paragraph) for a dataset.* key dataset `name` does not read: a key of
    another dataset (`+dataset.train_size` on MNIST) would otherwise be ignored."""
    known = _options_of(name)
    unknown = sorted(set(options) - set(known) - {"name", "exclude"})
    if unknown:
        others = sorted(other for other in LOADERS if other != name
                        and set(unknown) <= set(_options_of(other)))
        elsewhere = (f" ({', '.join(f'dataset.{k}' for k in unknown)} "
                     f"{'is an option' if len(unknown) == 1 else 'are options'} of "
                     f"{' and '.join(f'dataset={o}' for o in others)})" if others else "")
        raise UserError(
            f"dataset={name} does not read {', '.join(f'dataset.{k}' for k in unknown)}"
            f"{elsewhere}: the run would ignore {'it' if len(unknown) == 1 else 'them'}. Its "
            f"options are "
            f"{', '.join(f'dataset.{k}' for k in known)}; remove the key from the command line.")


def load_dataset(name: str, strict: bool = True, **options) -> ImageData:
    """Load the dataset `name` (a key of LOADERS) with its config options. A key the dataset
    does not read is refused (`check_options`), or with `strict=False` (a config stored by an
    earlier version, whose run ignored it) left out again."""
    if name not in LOADERS:
        raise UserError(f"Unknown dataset '{name}'. Known datasets: {', '.join(sorted(LOADERS))}.")
    if strict:
        check_options(name, options)
    else:
        read = {*_options_of(name), "exclude"}
        options = {k: v for k, v in options.items() if k in read}
    if name not in RESIZED_ON_DEVICE:
        return LOADERS[name](**options)
    size = options.pop("image_size", None)
    if size is not None:
        size = pixel_size(size, hint=AS_STORED)
    return LOADERS[name](**options).resized(size)
