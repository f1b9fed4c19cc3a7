"""Dataset files are data: a planted pickle runs nothing, and files whose counts, labels or shapes
are wrong are named in one clear error instead of training on garbage or crashing later."""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbench.data import load_dataset
from cnnbench.errors import UserError

TINY = ["model=mlp", "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
        "trainer.val_split=0", "evaluation.plots=false", "evaluation.table=false",
        "evaluation.shifts=[]", "dataset.download=false"]
CIFAR = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                     ["test_batch"], "batches.meta", "label_names", "labels", 10),
         "cifar100": ("cifar-100-python", ["train"], ["test"], "meta", "fine_label_names",
                      "fine_labels", 100)}


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the protocol of the real files


def write_cifar(root: Path, name: str, n: int = 8, seed: int = 0) -> Path:
    """A small CIFAR set in the layout and format of the real python version: every batch a
    dict with `data` (n x 3072 uint8 numpy array) and its labels, plus the meta file."""
    folder_name, train, test, meta, names_key, labels_key, classes = CIFAR[name]
    folder = root / folder_name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, f in enumerate(train + test):
        entry = {"batch_label": f"batch {i}", "data": rng.integers(0, 256, (n, 3072), np.uint8),
                 labels_key: [int(v) for v in rng.integers(0, classes, n)],
                 "filenames": [f"img_{i}_{j}.png" for j in range(n)]}
        if name == "cifar100":
            entry["coarse_labels"] = [v % 20 for v in entry[labels_key]]
        _dump(folder / f, entry)
    extra = {"coarse_label_names": [f"k{i}" for i in range(20)]} if name == "cifar100" else {}
    _dump(folder / meta, {names_key: [f"c{i}" for i in range(classes)], **extra})
    return folder


def edit_batch(path: Path, **changes) -> None:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    _dump(path, entry)


class WritesMarker:
    """What a planted pickle would do: run a shell command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- CIFAR ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_real_format_cifar_loads_and_trains_one_epoch(cli, tmp_path, name):
    folder = write_cifar(tmp_path / "data", name)
    raw = (folder / CIFAR[name][2][0]).read_bytes()
    assert raw[:2] == b"\x80\x02" and b"_reconstruct" in raw  # protocol 2, a numpy array inside
    data = load_dataset(name, root=str(tmp_path / "data"), download=False)
    assert data.train.images.shape == (8 * len(CIFAR[name][1]), 3, 32, 32)
    assert data.num_classes == CIFAR[name][6]
    proc = cli("train", f"dataset={name}", f"dataset.root={tmp_path / 'data'}", *TINY,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = (tmp_path / "outputs" / "runs").iterdir()
    assert '"status": "completed"' in (run / "metrics.json").read_text()


def test_a_planted_cifar_pickle_runs_nothing(cli, tmp_path):
    folder = write_cifar(tmp_path / "data", "cifar10")
    marker = tmp_path / "pwned"
    edit_batch(folder / "data_batch_1", data=WritesMarker(marker))
    with open(folder / "data_batch_1", "rb") as f:  # the file would run it: a plain load does
        assert b"system" in f.read()
    with pytest.raises(UserError) as err:
        load_dataset("cifar10", root=str(tmp_path / "data"), download=False)
    assert not marker.exists()
    message = str(err.value)
    assert f"{folder / 'data_batch_1'} is not a CIFAR file that can be trusted" in message
    assert "system" in message and "\n" not in message
    proc = cli("train", "dataset=cifar10", f"dataset.root={tmp_path / 'data'}", *TINY,
               cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not marker.exists() and "Traceback" not in text, text
    assert "is not a CIFAR file that can be trusted" in text


def test_a_planted_meta_file_runs_nothing(tmp_path):
    folder = write_cifar(tmp_path, "cifar100")
    marker = tmp_path / "pwned"
    _dump(folder / "meta", {"fine_label_names": WritesMarker(marker)})
    with pytest.raises(UserError, match=r"meta is not a CIFAR file that can be trusted"):
        load_dataset("cifar100", root=str(tmp_path), download=False)
    assert not marker.exists()


@pytest.mark.parametrize("change,message", [
    (dict(labels=[0] * 7), "data_batch_2 has 7 labels for 8 images"),
    (dict(labels=[0] * 7 + [10]), "data_batch_2 has label 10 at position 7, but the dataset "
                                  "has 10 classes (labels 0 to 9)"),
    (dict(labels=[-1] + [0] * 7), "data_batch_2 has label -1 at position 0"),
    (dict(labels=["cat"] * 8), "data_batch_2 has 'labels' that is not a list of whole numbers"),
    (dict(data=np.zeros((8, 1024), np.uint8)), "data_batch_2 has 'data' of shape (8, 1024)"),
    (dict(data=np.zeros((8, 3072), np.float32)), "and type float32, not N x 3072 uint8"),
    (dict(data=[1, 2, 3]), "data_batch_2 has 'data' of shape None"),
])
def test_cifar_batches_that_disagree_name_the_file(tmp_path, change, message):
    folder = write_cifar(tmp_path, "cifar10")
    edit_batch(folder / "data_batch_2", **change)
    with pytest.raises(UserError) as err:
        load_dataset("cifar10", root=str(tmp_path), download=False)
    assert message in str(err.value), str(err.value)
    assert "delete it and copy or download the dataset again" in str(err.value)


def test_cifar_meta_with_the_wrong_class_count(tmp_path):
    folder = write_cifar(tmp_path, "cifar100")
    _dump(folder / "meta", {"fine_label_names": ["a", "b"]})
    with pytest.raises(UserError, match=r"meta names 2 classes under 'fine_label_names', not 100"):
        load_dataset("cifar100", root=str(tmp_path), download=False)


# -- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fashion(tmp_path):
    from conftest import write_idx_set

    raw = tmp_path / "FashionMNIST" / "raw"
    write_idx_set(raw, train=20, test=10)
    return raw


@pytest.mark.parametrize("file,array,message", [
    ("train-labels-idx1-ubyte.gz", np.zeros(19), "train-labels-idx1-ubyte.gz has 19 labels but "),
    ("t10k-labels-idx1-ubyte.gz", np.array([0] * 9 + [10]),
     "t10k-labels-idx1-ubyte.gz has label 10 at position 9, but the dataset has 10 classes"),
    ("t10k-labels-idx1-ubyte.gz", np.zeros((10, 2)), "holds labels of shape (10, 2)"),
    ("train-images-idx3-ubyte.gz", np.zeros((20, 784)), "train-images-idx3-ubyte.gz holds an "
                                                        "array of shape (20, 784), not images"),
])
def test_idx_files_that_disagree_name_the_file(fashion, file, array, message):
    write_idx(fashion / file, array)
    with pytest.raises(UserError) as err:
        load_dataset("fashion_mnist", root=str(fashion.parent.parent), download=False)
    assert message in str(err.value), str(err.value)
    assert str(fashion / file) in str(err.value) and "\n" not in str(err.value)


def test_idx_count_mismatch_names_both_files(fashion):
    write_idx(fashion / "train-labels-idx1-ubyte.gz", np.zeros(19))
    with pytest.raises(UserError) as err:
        load_dataset("fashion_mnist", root=str(fashion.parent.parent), download=False)
    assert f"but {fashion / 'train-images-idx3-ubyte.gz'} has 20 images" in str(err.value)


# -- image folders ----------------------------------------------------------------------------

def test_corrupt_images_are_named_relative_to_the_folder(cli, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    for cls in ("cat", "dog"):
        (photos / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(photos / cls / f"{i}.png")
    (photos / "cat" / "broken.png").write_bytes(b"not a png")
    good = photos / "dog" / "0.png"
    (photos / "dog" / "cut.png").write_bytes(good.read_bytes()[:30])  # truncated
    with pytest.raises(UserError) as err:
        load_dataset("imagefolder", path=str(photos), image_size=8)
    message = str(err.value)
    assert message.startswith(f"2 files in dataset.path={photos} could not be read as an image")
    assert "cat/broken.png (not an image format Pillow can decode)" in message
    assert "dog/cut.png (" in message and f"{photos}/cat" not in message
    assert "remove or replace the broken files" in message
    proc = cli("train", "dataset=imagefolder", f"dataset.path={photos}", "dataset.image_size=8",
               *TINY[:-1], cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text and "cat/broken.png" in text, text
    (photos / "cat" / "broken.png").unlink()
    (photos / "dog" / "cut.png").unlink()
    data = load_dataset("imagefolder", path=str(photos), image_size=8)
    assert len(data.train) + len(data.test) == 6
    assert torch.equal(torch.unique(torch.cat([data.train.labels, data.test.labels])),
                       torch.tensor([0, 1]))
