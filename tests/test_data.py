"""Datasets load into uint8 tensors with the right metadata, offline, or fail with a clear error."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbench.data import DeviceLoader, load_dataset
from cnnbench.engine.augment import BatchAugment
from cnnbench.errors import UserError


def test_embedded_mnist_needs_no_files(tmp_path):
    data = load_dataset("mnist", root=str(tmp_path / "empty"), download=False)
    assert data.train.images.shape == (60000, 1, 28, 28)
    assert data.test.images.shape == (10000, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8
    assert data.classes == [str(i) for i in range(10)]
    assert torch.bincount(data.test.labels).tolist()[:3] == [980, 1135, 1032]


def test_mnist_from_data_root(mnist_root):
    data = load_dataset("mnist", root=str(mnist_root), download=False)
    assert (data.channels, data.image_size, data.num_classes) == (1, (28, 28), 10)
    assert abs(data.train.images.float().mean().item() / 255 - 0.1307) < 1e-3


def test_fashion_mnist_from_data_root(fashion_root):
    data = load_dataset("fashion_mnist", root=str(fashion_root), download=False)
    assert len(data.train) == 120 and len(data.test) == 40
    assert data.train.images.shape[1:] == (1, 28, 28) and data.classes[0] == "T-shirt/top"
    assert data.train.labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_missing_dataset_names_the_path(tmp_path):
    with pytest.raises(UserError) as err:
        load_dataset("fashion_mnist", root=str(tmp_path), download=False)
    message = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message and "dataset.root" in message


def test_corrupted_archive_is_a_user_error(tmp_path, mnist_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_root / "MNIST" / "raw").iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(UserError, match="corrupted"):
        load_dataset("mnist", root=str(tmp_path), download=False)


def _write_cifar(root: Path, name: str, n_per_file: int = 6) -> None:
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        meta, names_key, labels_key, classes = "batches.meta", "label_names", "labels", 10
    else:
        folder = root / "cifar-100-python"
        files, meta = ["train", "test"], "meta"
        names_key, labels_key, classes = "fine_label_names", "fine_labels", 100
    folder.mkdir(parents=True)
    for f in files:
        entry = {"data": rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8),
                 labels_key: rng.integers(0, classes, n_per_file).tolist()}
        with open(folder / f, "wb") as fh:
            pickle.dump(entry, fh)
    with open(folder / meta, "wb") as fh:
        pickle.dump({names_key: [f"c{i}" for i in range(classes)]}, fh)


@pytest.mark.parametrize("name,classes,train_n", [("cifar10", 10, 30), ("cifar100", 100, 6)])
def test_cifar_reads_the_python_pickles(tmp_path, name, classes, train_n):
    _write_cifar(tmp_path, name)
    data = load_dataset(name, root=str(tmp_path), download=False)
    assert data.train.images.shape == (train_n, 3, 32, 32)
    assert data.test.images.shape == (6, 3, 32, 32)
    assert data.num_classes == classes and len(data.mean) == 3
    # channel-first layout: the first 1024 bytes of a row are the red plane
    folder = next(tmp_path.iterdir())
    first = pickle.load(open(folder / sorted(p.name for p in folder.iterdir()
                                             if "test" in p.name)[0], "rb"))
    assert torch.equal(data.test.images[0, 0].flatten(),
                       torch.from_numpy(first["data"][0, :1024].copy()))


def test_missing_cifar_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=str(tmp_path), download=False)


def test_unknown_dataset():
    with pytest.raises(UserError, match="Known datasets"):
        load_dataset("imagenet22k")


def test_synthetic_shape_and_determinism():
    a = load_dataset("synthetic", channels=3, image_size=16, num_classes=5, train_size=64,
                     test_size=32)
    b = load_dataset("synthetic", channels=3, image_size=16, num_classes=5, train_size=64,
                     test_size=32)
    assert a.train.images.shape == (64, 3, 16, 16) and a.num_classes == 5
    assert torch.equal(a.train.images, b.train.images)


def test_validation_split_is_seeded_and_disjoint():
    data = load_dataset("synthetic", train_size=100, test_size=10)
    one = data.with_validation(0.2, seed=1)
    two = data.with_validation(0.2, seed=1)
    other = data.with_validation(0.2, seed=2)
    assert len(one.val) == 20 and len(one.train) == 80
    assert torch.equal(one.val.images, two.val.images)
    assert not torch.equal(one.val.labels, other.val.labels) or \
        not torch.equal(one.val.images, other.val.images)
    assert data.with_validation(0.0, seed=1).val is None


def test_device_loader_batches_normalizes_and_shuffles_by_seed():
    data = load_dataset("synthetic", train_size=100, test_size=10)
    loader = DeviceLoader(data.train, 32, torch.device("cpu"), data.mean, data.std,
                          shuffle=True, seed=3)
    batches = list(loader)
    assert len(loader) == 4 and [b[0].shape[0] for b in batches] == [32, 32, 32, 4]
    x = torch.cat([b[0] for b in batches])
    expected = (data.train.images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(x.sort(0).values, expected.sort(0).values, atol=1e-5)
    again = DeviceLoader(data.train, 32, torch.device("cpu"), data.mean, data.std,
                         shuffle=True, seed=3)
    assert torch.equal(next(iter(again))[1], batches[0][1])
    assert not torch.equal(next(iter(loader))[1], batches[0][1])  # a new order each epoch


def test_augmentation_keeps_shape_and_varies_per_image():
    x = torch.rand(1, 1, 28, 28).repeat(8, 1, 1, 1)
    out = BatchAugment(rotation=10, translate=0.1, scale=0.1, shear=0.1)(
        x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert len({tuple(o.flatten()[:50].tolist()) for o in out}) == 8


def test_crop_shift_stays_within_padding():
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # one bright pixel in the centre
    out = BatchAugment(crop_padding=2)(x, torch.Generator().manual_seed(0))
    pos = out.flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert (out.flatten(1).sum(1) == 1).all()
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5
