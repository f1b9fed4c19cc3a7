"""Where each dataset comes from: files under a data root (torchvision's layout), or memory.

Every loader returns an `ImageData` of uint8 tensors. Files are read once; the training loop never
touches the disk again.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from .idx import read_idx
from .image_data import ImageData, Split

EMBEDDED_MNIST = Path(__file__).parent / "embedded_mnist"

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _fix_hint(name: str, folder: Path, expected: str) -> str:
    return (
        f"Put the {name} files there ({expected}), e.g. copy them from a machine that has them, "
        f"or point the tool at the folder that holds them with dataset.root=/path/to/data "
        f"(or the environment variable CNNBENCH_DATA); with network access, dataset.download=true "
        f"fetches them."
    )


def _find_idx(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_split(raw: Path, which: str) -> Split:
    images_stem, labels_stem = _IDX_FILES[which]
    images = read_idx(_find_idx(raw, images_stem))
    labels = read_idx(_find_idx(raw, labels_stem))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    return Split(images.unsqueeze(1).contiguous(), labels.long())


def _idx_complete(raw: Path) -> bool:
    return all(_find_idx(raw, stem) for pair in _IDX_FILES.values() for stem in pair)


def _load_idx_family(folder_name: str, tv_class: str, root: str | None, download: bool,
                     embedded: Path | None) -> tuple[Split, Split, Path]:
    raw = Path(root or ".").expanduser() / folder_name / "raw"
    if not _idx_complete(raw):
        if embedded is not None:
            raw = embedded
        elif download:
            _torchvision_download(tv_class, raw.parent.parent)
        if not _idx_complete(raw):
            raise UserError(
                f"The {folder_name} dataset is not on disk: no complete set of the four "
                f"*-ubyte(.gz) files in {raw.resolve()}"
                + (" and the download failed" if download else " and dataset.download=false")
                + ". " + _fix_hint(folder_name, raw, "the four *-ubyte.gz archives in <root>/"
                                   f"{folder_name}/raw/")
            )
    try:
        return _read_idx_split(raw, "train"), _read_idx_split(raw, "test"), raw
    except (OSError, ValueError, EOFError) as err:
        raise UserError(
            f"The {folder_name} files in {raw.resolve()} could not be read ({err}). They are "
            f"probably corrupted or incomplete: delete them and copy or download them again."
        ) from None


def _torchvision_download(tv_class: str, root: Path) -> None:
    """Let torchvision fetch the archives; any failure is reported by the caller's check."""
    import torchvision.datasets as tvd

    try:
        getattr(tvd, tv_class)(str(root), train=True, download=True)
        getattr(tvd, tv_class)(str(root), train=False, download=True)
    except Exception:  # no network, refused, bad checksum: the caller says what is missing
        pass


def load_mnist(root: str | None, download: bool = True) -> ImageData:
    """MNIST from <root>/MNIST/raw when it is there, else from the copy inside the package."""
    train, test, _ = _load_idx_family("MNIST", "MNIST", root, download, EMBEDDED_MNIST)
    return ImageData("mnist", train, test, MNIST_CLASSES, (0.1307,), (0.3081,))


def load_fashion_mnist(root: str | None, download: bool = True) -> ImageData:
    train, test, _ = _load_idx_family("FashionMNIST", "FashionMNIST", root, download, None)
    return ImageData("fashion_mnist", train, test, FASHION_CLASSES, (0.2860,), (0.3530,))


# CIFAR: the python pickles of https://www.cs.toronto.edu/~kriz/cifar.html, as torchvision stores them.
_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", tv="CIFAR10",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                    meta="batches.meta", names="label_names", labels="labels",
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": dict(folder="cifar-100-python", tv="CIFAR100", train=["train"], test=["test"],
                     meta="meta", names="fine_label_names", labels="fine_labels",
                     mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}


def _read_cifar_batches(folder: Path, files: list[str], label_key: str) -> Split:
    images, labels = [], []
    for name in files:
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry[label_key])
    return Split(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long))


def load_cifar(name: str, root: str | None, download: bool = True) -> ImageData:
    spec = _CIFAR[name]
    base = Path(root or ".").expanduser()
    folder = base / spec["folder"]
    needed = spec["train"] + spec["test"] + [spec["meta"]]
    if not all((folder / f).is_file() for f in needed) and download:
        _torchvision_download(spec["tv"], base)
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise UserError(
            f"The {name} dataset is not on disk: {folder.resolve()} lacks {', '.join(missing)}"
            + (" and the download failed" if download else " and dataset.download=false")
            + ". " + _fix_hint(name, folder, f"the extracted {spec['folder']}/ folder of the python "
                               "version, as torchvision downloads it, inside <root>/")
        )
    try:
        with open(folder / spec["meta"], "rb") as f:
            classes = list(pickle.load(f, encoding="latin1")[spec["names"]])
        train = _read_cifar_batches(folder, spec["train"], spec["labels"])
        test = _read_cifar_batches(folder, spec["test"], spec["labels"])
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as err:
        raise UserError(
            f"The {name} files in {folder.resolve()} could not be read ({type(err).__name__}: {err}). "
            f"They are probably corrupted or incomplete: delete the folder and download it again."
        ) from None
    return ImageData(name, train, test, classes, spec["mean"], spec["std"])


def load_synthetic(channels: int = 1, image_size: int = 28, num_classes: int = 10,
                   train_size: int = 2048, test_size: int = 512, seed: int = 0,
                   **_: object) -> ImageData:
    """Random images with class structure: each class is a fixed random pattern plus noise."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, channels, image_size, image_size, generator=g)

    def make(n: int) -> Split:
        labels = torch.randint(0, num_classes, (n,), generator=g)
        noise = torch.rand(n, channels, image_size, image_size, generator=g)
        images = (0.6 * prototypes[labels] + 0.4 * noise) * 255
        return Split(images.round().to(torch.uint8), labels)

    return ImageData("synthetic", make(train_size), make(test_size),
                     [f"class_{i}" for i in range(num_classes)], (0.5,) * channels, (0.25,) * channels)


LOADERS: dict[str, Callable[..., ImageData]] = {
    "mnist": lambda root=None, download=True, **_: load_mnist(root, download),
    "fashion_mnist": lambda root=None, download=True, **_: load_fashion_mnist(root, download),
    "cifar10": lambda root=None, download=True, **_: load_cifar("cifar10", root, download),
    "cifar100": lambda root=None, download=True, **_: load_cifar("cifar100", root, download),
    "synthetic": lambda root=None, download=False, **options: load_synthetic(**options),
    "imagefolder": lambda root=None, download=False, **options: _imagefolder(**options),
}


def _imagefolder(**options) -> ImageData:
    from .folder import load_imagefolder  # Pillow is imported only for this dataset

    return load_imagefolder(**options)


def load_dataset(name: str, **options) -> ImageData:
    """Load the dataset `name` (a key of LOADERS) with its config options."""
    if name not in LOADERS:
        raise UserError(f"Unknown dataset '{name}'. Known datasets: {', '.join(sorted(LOADERS))}.")
    return LOADERS[name](**options)
