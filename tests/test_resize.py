"""`dataset.image_size` for the file datasets: every batch is resized on the training device (after
the conversion to float, before augmentation); the images stay stored at their own size."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from cnnbench.data import DeviceLoader, ImageData, Split, StreamingLoader, load_dataset
from cnnbench.data import loader as loader_module
from cnnbench.data.shapes import SHAPES, InputShape, input_shape
from cnnbench.engine.augment import BatchAugment
from cnnbench.errors import UserError

CPU = torch.device("cpu")
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
TINY = ["trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false", "trainer.val_split=0",
        "evaluation.plots=false", "evaluation.table=false", "dataset.download=false",
        "hydra.run.dir=run"]


def make_split(n: int = 70, channels: int = 3, size: int = 8) -> Split:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return Split(images, torch.arange(n) % 10)


def batches(loader, epochs: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for _ in range(epochs) for x, y in loader]


def loader_of(kind: str, split: Split, **options):
    if kind == "streaming":
        return StreamingLoader(split, 16, CPU, MEAN, STD, num_workers=0, **options)
    loader = DeviceLoader(split, 16, CPU, MEAN, STD, **options)
    loader.whole_epoch = kind == "whole-epoch"
    return loader


# -- the loaders ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["whole-epoch", "per-batch", "streaming"])
@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2, erasing=0.5)])
@pytest.mark.parametrize("size", [(12, 20), (6, 4)])  # larger, and smaller (antialiased)
def test_batches_come_at_the_resized_shape(kind, augment, size):
    loader = loader_of(kind, make_split(), shuffle=True, seed=2, augment=augment,
                       channels_last=True, resize_to=size)
    assert loader.sample_shape == (3, *size)
    shapes = [tuple(x.shape) for x, _ in loader]
    assert shapes == [(16, 3, *size)] * 4 + [(6, 3, *size)]
    x, _ = next(iter(loader))
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2, rotation=10)])
def test_every_path_gives_the_same_resized_batches(augment):
    options = dict(shuffle=True, seed=5, augment=augment, resize_to=(20, 16))
    expected = batches(loader_of("whole-epoch", make_split(), **options))
    for kind in ("per-batch", "streaming"):
        got = batches(loader_of(kind, make_split(), **options))
        assert len(got) == len(expected) == 10
        assert all(torch.equal(xa, xb) and torch.equal(ya, yb)
                   for (xa, ya), (xb, yb) in zip(expected, got)), kind


def test_the_resize_is_bilinear_on_the_converted_images():
    split = make_split(n=10)
    for size, antialias in (((16, 16), False), ((5, 5), True)):
        loader = DeviceLoader(split, 10, CPU, MEAN, STD, resize_to=size)
        x, _ = next(iter(loader))
        resized = F.interpolate(split.images.float() / 255, size=size, mode="bilinear",
                                align_corners=False, antialias=antialias)
        expected = (resized - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)
        assert torch.allclose(x, expected, atol=1e-4)


def test_the_stored_size_is_no_resize():
    split = make_split(n=20)
    plain = batches(DeviceLoader(split, 8, CPU, MEAN, STD, shuffle=True, seed=1), epochs=1)
    same = batches(DeviceLoader(split, 8, CPU, MEAN, STD, shuffle=True, seed=1, resize_to=(8, 8)),
                   epochs=1)
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(plain, same))


def test_the_whole_epoch_copy_is_counted_at_the_resized_size(monkeypatch):
    split = make_split(n=100)  # 100 x 3 x 8 x 8: 19,200 uint8 bytes + 76,800 float bytes
    monkeypatch.setattr(loader_module, "EPOCH_COPY_LIMIT", 100_000)
    assert DeviceLoader(split, 16, CPU, MEAN, STD).whole_epoch
    resized = DeviceLoader(split, 16, CPU, MEAN, STD, resize_to=(16, 16), shuffle=True, seed=3)
    assert not resized.whole_epoch  # 4 x the floats: over the limit, prepared per batch
    assert [tuple(x.shape) for x, _ in resized] == [(16, 3, 16, 16)] * 6 + [(4, 3, 16, 16)]


@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2)])
def test_warm_up_at_the_resized_size_leaves_the_batches_as_they_were(augment):
    options = dict(shuffle=True, seed=1, augment=augment, resize_to=(10, 12))
    expected = batches(loader_of("whole-epoch", make_split(n=40), **options))
    warmed = loader_of("whole-epoch", make_split(n=40), **options)
    warmed.warm_up()
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(expected, batches(warmed)))


def test_the_order_and_its_resume_do_not_depend_on_the_resize():
    split = make_split()
    plain = DeviceLoader(split, 16, CPU, MEAN, STD, shuffle=True, seed=7)
    resized = StreamingLoader(split, 16, CPU, MEAN, STD, shuffle=True, seed=7, num_workers=0,
                              resize_to=(12, 12))
    batches(plain, 1), batches(resized, 1)
    resized.load_state_dict(plain.state_dict())
    assert all(torch.equal(ya, yb) for (_, ya), (_, yb) in zip(batches(plain, 1), batches(resized, 1)))


# -- the dataset and its config ---------------------------------------------------------------

def test_image_data_tells_the_model_size_from_the_stored_one():
    split = make_split(n=20, channels=1, size=28)
    data = ImageData("mnist", split, split, [str(i) for i in range(10)], (0.5,), (0.25,))
    assert data.image_size == data.stored_size == (28, 28) and data.resize_to is None
    assert data.resized((28, 28)).resize_to is None
    big = data.resized([224, 200])
    assert (big.image_size, big.stored_size, big.resize_to) == ((224, 200), (28, 28), (224, 200))
    held_out = big.with_validation(0.25, seed=0)
    assert held_out.resize_to == (224, 200) and len(held_out.val) == 5
    assert big.with_validation(0, seed=0).resize_to == (224, 200)


def test_load_dataset_applies_the_size_to_the_file_datasets(mnist_root):
    data = load_dataset("mnist", root=str(mnist_root), download=False, image_size=[32, 40])
    assert (data.image_size, data.stored_size) == ((32, 40), (28, 28))
    assert tuple(data.train.images.shape[2:]) == (28, 28)  # stored as the files have them
    assert load_dataset("mnist", root=str(mnist_root), download=False, image_size=28).resize_to is None
    assert load_dataset("mnist", root=str(mnist_root), download=False, image_size=None).resize_to is None


@pytest.mark.parametrize("bad", [0, -3, "abc", [1, 2, 3], True, [0, 5]])
def test_a_bad_size_is_one_paragraph_naming_the_key(bad):
    with pytest.raises(UserError) as err:  # refused before any file is read
        load_dataset("cifar10", root="/nowhere", download=False, image_size=bad)
    text = str(err.value)
    assert f"dataset.image_size={bad!r} is not valid" in text and "\n" not in text
    assert "e.g. dataset.image_size=32" in text and "dataset.image_size=null" in text
    with pytest.raises(UserError, match="dataset.image_size="):
        input_shape({"name": "mnist", "image_size": bad})
    with pytest.raises(UserError, match="dataset.image_size="):
        load_dataset("imagefolder", path="/nowhere", image_size=bad)


def test_input_shape_reports_the_resized_shape():
    assert input_shape({"name": "cifar10", "image_size": 64}) == InputShape(3, 64, 64, 10)
    assert input_shape({"name": "mnist", "image_size": [32, 48]}) == InputShape(1, 32, 48, 10)
    assert input_shape({"name": "cifar100", "image_size": None}) == SHAPES["cifar100"]


def test_the_file_datasets_take_the_key(compose):
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert compose([f"dataset={name}"]).dataset.image_size is None
    cfg = compose(["dataset=cifar10", "dataset.image_size=[224,200]"])
    assert input_shape(cfg.dataset) == InputShape(3, 224, 200, 10)


def test_models_command_sizes_the_models_for_the_resized_input(capsys):
    from cnnbench.cli import main

    assert main(["models", "dataset=cifar10", "dataset.image_size=64", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["input"] == [3, 64, 64] for r in rows)
    assert main(["models", "dataset=cifar10", "dataset.image_size=64"]) == 0
    assert "3x64x64" in capsys.readouterr().out


# -- a run ------------------------------------------------------------------------------------

def test_a_run_trains_on_resized_cifar_and_keeps_the_size_in_its_checkpoint(cli, tmp_path):
    from test_data_files import write_cifar

    write_cifar(tmp_path / "data", "cifar10")
    proc = cli("train", "dataset=cifar10", f"dataset.root={tmp_path / 'data'}",
               "dataset.image_size=48", "model=lenet", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and 0 <= metrics["test/acc"] <= 1
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert (checkpoint["data"]["height"], checkpoint["data"]["width"]) == (48, 48)


def test_a_run_on_mnist_files_shrinks_them(cli, tmp_path):
    from conftest import write_idx_set

    write_idx_set(tmp_path / "data" / "MNIST" / "raw")
    proc = cli("train", "dataset=mnist", f"dataset.root={tmp_path / 'data'}",
               "dataset.image_size=[20,24]", "model=mlp", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test/acc" in json.loads((tmp_path / "run" / "metrics.json").read_text())
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert (checkpoint["data"]["height"], checkpoint["data"]["width"]) == (20, 24)
