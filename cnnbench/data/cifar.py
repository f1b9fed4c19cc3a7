"""CIFAR-10 and CIFAR-100: the python version's pickles
(https://www.cs.toronto.edu/~kriz/cifar.html), as torchvision stores them under <root>."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from cnnbench.data.cifar_pickle import read_cifar_pickle
from cnnbench.data.download import source_urls, try_download
from cnnbench.data.image_data import ImageData, Split
from cnnbench.data.source_files import (
    bad_file,
    check_labels,
    not_on_disk,
)
from cnnbench.errors import UserError

_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", tv="CIFAR10",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                    meta="batches.meta", names="label_names", labels="labels", classes=10,
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
    "cifar100": dict(folder="cifar-100-python", tv="CIFAR100", train=["train"], test=["test"],
                     meta="meta", names="fine_label_names", labels="fine_labels", classes=100,
                     mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> Split:
    entry = read_cifar_pickle(path)
    for key in ("data", label_key):
        if key not in entry:
            raise bad_file(path, f"has no '{key}' entry (it has: {', '.join(map(str, entry))})")
    data = entry["data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
            or data.dtype != np.uint8:
        shape = getattr(data, "shape", None)
        raise bad_file(path, f"has 'data' of shape {shape} and type "
                             f"{getattr(data, 'dtype', type(data).__name__)}, not N x 3072 "
                             f"uint8 rows (32 x 32 pixels x 3 colour planes)")
    labels = entry[label_key]
    if not isinstance(labels, (list, np.ndarray)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        raise bad_file(path, f"has '{label_key}' that is not a list of whole numbers")
    huge = next((i for i, v in enumerate(labels) if not -2**63 <= v < 2**63), None)
    if huge is not None:  # beyond int64: check_labels could not even hold it
        raise bad_file(path, f"has label {labels[huge]} at position {huge}, but the dataset has "
                             f"{num_classes} classes (labels 0 to {num_classes - 1})")
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
        raise bad_file(path, f"has no list of class names under '{key}'")
    if len(names) != expected:
        raise bad_file(path, f"names {len(names)} classes under '{key}', not {expected}")
    return names


def load_cifar(name: str, root: str | None, download: bool = True) -> ImageData:
    spec = _CIFAR[name]
    base = Path(root or ".").expanduser()
    folder = base / spec["folder"]
    needed = spec["train"] + spec["test"] + [spec["meta"]]
    failure = None
    if not all((folder / f).is_file() for f in needed) and download:
        failure = try_download(spec["tv"], base) or "the archive it fetched lacks files"
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        url = source_urls(spec["tv"])[0]
        raise not_on_disk(
            name, f"{folder.absolute()} lacks {', '.join(missing)}", failure,
            f"extract {url.rsplit('/', 1)[1]} in {base.absolute()} by hand, which makes "
            f"{spec['folder']}/ with {', '.join(needed)}", url)
    try:
        classes = _cifar_classes(folder / spec["meta"], spec["names"], spec["classes"])
        train = _read_cifar_batches(folder, spec["train"], spec["labels"], spec["classes"])
        test = _read_cifar_batches(folder, spec["test"], spec["labels"], spec["classes"])
    except (OSError, ValueError, KeyError, EOFError, TypeError, pickle.UnpicklingError) as err:
        raise UserError(
            f"The {name} files in {folder.resolve()} could not be read ({type(err).__name__}: {err}). "
            f"They are probably corrupted or incomplete: delete the folder and download it again."
        ) from None
    return ImageData(name, train, test, classes, spec["mean"], spec["std"],
                     source=folder.absolute())
