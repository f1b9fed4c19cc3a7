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

from cnnbench.data.idx import read_idx
from cnnbench.data.image_data import ImageData, Split
from cnnbench.data.sizes import AS_STORED, pixel_size
from cnnbench.errors import UserError

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


def _bad_file(path: Path, what: str) -> UserError:
    return UserError(f"{path} {what}. The file is corrupted, incomplete or from another "
                     f"dataset: delete it and copy or download the dataset again.")


def check_labels(labels: np.ndarray | torch.Tensor, n_images: int, num_classes: int,
                 labels_file: Path, images_file: Path) -> None:
    """One label per image, each a class index in [0, num_classes)."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise _bad_file(labels_file, f"holds labels of shape {tuple(labels.shape)}, not one "
                                     f"label per image")
    if len(labels) != n_images:
        where = "" if labels_file == images_file else f" but {images_file} has"
        raise _bad_file(labels_file, f"has {len(labels)} labels{where or ' for'} {n_images} "
                                     f"images: every image needs exactly one label")
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise _bad_file(labels_file, f"has label {int(labels[i])} at position {i}, but the "
                                     f"dataset has {num_classes} classes (labels 0 to "
                                     f"{num_classes - 1})")


def _read_idx_split(raw: Path, which: str, num_classes: int) -> Split:
    images_file, labels_file = (_find_idx(raw, stem) for stem in _IDX_FILES[which])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3:
        raise _bad_file(images_file, f"holds an array of shape {tuple(images.shape)}, not "
                                     f"images (N x height x width)")
    check_labels(labels, images.shape[0], num_classes, labels_file, images_file)
    return Split(images.unsqueeze(1).contiguous(), labels.long())


def _idx_complete(raw: Path) -> bool:
    return all(_find_idx(raw, stem) for pair in _IDX_FILES.values() for stem in pair)


def _load_idx_family(folder_name: str, tv_class: str, root: str | None, download: bool,
                     embedded: Path | None, num_classes: int = 10) -> tuple[Split, Split, Path]:
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
        return (_read_idx_split(raw, "train", num_classes),
                _read_idx_split(raw, "test", num_classes), raw)
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
                    meta="batches.meta", names="label_names", labels="labels", classes=10,
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": dict(folder="cifar-100-python", tv="CIFAR100", train=["train"], test=["test"],
                     meta="meta", names="fine_label_names", labels="fine_labels", classes=100,
                     mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What pickle protocol 2 calls to rebuild `bytes` (as `_codecs.encode`): latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode({encoding!r}) is not a CIFAR encoding")
    return text.encode("latin1")


def _numpy_reconstruct() -> Callable:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# Everything the CIFAR pickles name: numpy's array reconstruction (the `data` arrays), and
# _codecs.encode, which protocol 2 from Python 3 uses for bytes. Lists, dicts, numbers and
# strings need no name. Anything else (os.system, builtins.eval, ...) is refused.
_CIFAR_GLOBALS: dict[tuple[str, str], Callable[[], object]] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


class UntrustedPickle(pickle.UnpicklingError):
    """A pickle asked for something a CIFAR file never holds."""


class CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR files and nothing else: only the names in _CIFAR_GLOBALS resolve."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise UntrustedPickle(f"{module}.{name}")
        return _CIFAR_GLOBALS[(module, name)]()


def read_cifar_pickle(path: Path) -> dict:
    """One CIFAR file (a pickled dict), loaded without running anything it names."""
    try:
        with open(path, "rb") as f:
            entry = CifarUnpickler(f, encoding="latin1").load()
    except UntrustedPickle as err:
        raise UserError(
            f"{path} is not a CIFAR file that can be trusted: it asks to load {err} while "
            f"unpickling, and the real CIFAR files hold only numpy arrays, lists, numbers and "
            f"strings (a pickle can run code, so nothing else is loaded). Delete the folder and "
            f"download CIFAR again (dataset.download=true, or from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html).") from None
    if not isinstance(entry, dict):
        raise _bad_file(path, f"holds a {type(entry).__name__}, not the dict of a CIFAR file")
    return entry


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> Split:
    entry = read_cifar_pickle(path)
    for key in ("data", label_key):
        if key not in entry:
            raise _bad_file(path, f"has no '{key}' entry (it has: {', '.join(map(str, entry))})")
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
            or data.dtype != np.uint8:
        shape = getattr(data, "shape", None)
        raise _bad_file(path, f"has 'data' of shape {shape} and type "
                              f"{getattr(data, 'dtype', type(data).__name__)}, not N x 3072 "
                              f"uint8 rows (32 x 32 pixels x 3 colour planes)")
    labels = entry[label_key]
    if not isinstance(labels, (list, np.ndarray)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        raise _bad_file(path, f"has '{label_key}' that is not a list of whole numbers")
    labels = torch.tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
    check_labels(labels, data.shape[0], num_classes, path, path)
    return Split(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), labels)


def _read_cifar_batches(folder: Path, files: list[str], label_key: str,
                        num_classes: int) -> Split:
    parts = [_cifar_batch(folder / name, label_key, num_classes) for name in files]
    return Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def _cifar_classes(path: Path, key: str, expected: int) -> list[str]:
    meta = read_cifar_pickle(path)
    names = meta.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _bad_file(path, f"has no list of class names under '{key}'")
    if len(names) != expected:
        raise _bad_file(path, f"names {len(names)} classes under '{key}', not {expected}")
    return names


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
        classes = _cifar_classes(folder / spec["meta"], spec["names"], spec["classes"])
        train = _read_cifar_batches(folder, spec["train"], spec["labels"], spec["classes"])
        test = _read_cifar_batches(folder, spec["test"], spec["labels"], spec["classes"])
    except (OSError, ValueError, KeyError, EOFError, TypeError, pickle.UnpicklingError) as err:
        raise UserError(
            f"The {name} files in {folder.resolve()} could not be read ({type(err).__name__}: {err}). "
            f"They are probably corrupted or incomplete: delete the folder and download it again."
        ) from None
    return ImageData(name, train, test, classes, spec["mean"], spec["std"])


def load_synthetic(channels: int = 1, image_size: int = 28, num_classes: int = 10,
                   train_size: int = 2048, test_size: int = 512, seed: int = 0,
                   **_: object) -> ImageData:
    """Random images with class structure: each class is a fixed random pattern plus noise."""
    sizes = {"channels": (channels, 1), "image_size": (image_size, 1),
             "num_classes": (num_classes, 2), "train_size": (train_size, 1),
             "test_size": (test_size, 1), "seed": (seed, 0)}
    for key, (value, least) in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(f"dataset.{key}={value!r} is not valid for dataset=synthetic: it must "
                            f"be a whole number of at least {least}, e.g. dataset.{key}="
                            f"{max(least, 2)}.")
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
