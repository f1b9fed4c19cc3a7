"""dataset=imagefolder: a folder of class subfolders, decoded once, cached, invalidated on change."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnbench.data import folder as folder_mod
from cnnbench.data import load_dataset
from cnnbench.errors import UserError


def write_png(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    arr = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(arr).save(path)


@pytest.fixture
def photos(tmp_path) -> Path:
    """Two classes of small images of different sizes: 'cat' dark, 'dog' bright."""
    root = tmp_path / "photos"
    for i in range(5):
        write_png(root / "cat" / f"{i}.png", (10 + i, 12), 20 + i)
        write_png(root / "dog" / f"{i}.png", (30, 17 + i), 220 - i)
    return root


def test_loads_resizes_and_labels_by_subfolder(photos):
    data = load_dataset("imagefolder", path=str(photos), image_size=8, test_split=0.2)
    assert data.classes == ["cat", "dog"]
    assert len(data.train) + len(data.test) == 10 and len(data.test) == 2
    assert data.train.images.dtype == torch.uint8
    assert data.train.images.shape[1:] == (3, 8, 8)
    for split in (data.train, data.test):  # labels follow the folder: cats dark, dogs bright
        means = split.images.float().mean((1, 2, 3))
        assert torch.all((means < 100) == (split.labels == 0))
    assert 0 < data.mean[0] < 1 and len(data.mean) == 3


def test_grayscale_folder_gives_one_channel_and_rectangular_size(tmp_path):
    for cls in ("a", "b"):
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", (9, 9), 100, mode="L")
    data = load_dataset("imagefolder", path=str(tmp_path), image_size=[6, 4])
    assert data.train.images.shape[1:] == (1, 6, 4)


def test_second_run_reads_the_cache_and_a_change_rebuilds_it(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNBENCH_CACHE_DIR", str(tmp_path / "cache"))
    first = load_dataset("imagefolder", path=str(photos), image_size=8)
    caches = list((tmp_path / "cache").glob("imagefolder_*_8x8_*.pt"))
    assert len(caches) == 1
    assert not [p for p in photos.rglob("*") if "cache" in p.name]  # the user's folder as it was

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(folder_mod, "_decode", no_decoding)
    second = load_dataset("imagefolder", path=str(photos), image_size=8)
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.test.labels, second.test.labels)

    write_png(photos / "dog" / "new.png", (20, 20), 250)  # a new file: the cache is stale
    with pytest.raises(AssertionError, match="decoded"):
        load_dataset("imagefolder", path=str(photos), image_size=8)
    monkeypatch.undo()
    third = load_dataset("imagefolder", path=str(photos), image_size=8)
    assert len(third.train) + len(third.test) == 11

    stamp = (photos / "cat" / "0.png").stat().st_mtime_ns + 5_000_000_000  # an edited file
    os.utime(photos / "cat" / "0.png", ns=(stamp, stamp))
    monkeypatch.setattr(folder_mod, "_decode", no_decoding)
    with pytest.raises(AssertionError, match="decoded"):
        load_dataset("imagefolder", path=str(photos), image_size=8)


def test_train_and_test_subfolders_are_used_as_given(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        for cls in ("x", "y"):
            for i in range(n):
                write_png(tmp_path / split / cls / f"{i}.png", (8, 8), 50)
    data = load_dataset("imagefolder", path=str(tmp_path), image_size=8)
    assert (len(data.train), len(data.test)) == (8, 4) and data.classes == ["x", "y"]


def test_missing_empty_and_flat_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="dataset.path"):
        load_dataset("imagefolder", path=None)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("imagefolder", path=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty folder"):
        load_dataset("imagefolder", path=str(tmp_path / "empty"))
    flat = tmp_path / "flat"
    write_png(flat / "a.png", (8, 8), 1)
    write_png(flat / "b.png", (8, 8), 2)
    with pytest.raises(UserError, match="no class subfolders.*2 images"):
        load_dataset("imagefolder", path=str(flat))
    one = tmp_path / "one"
    write_png(one / "only" / "a.png", (8, 8), 1)
    with pytest.raises(UserError, match="only one class"):
        load_dataset("imagefolder", path=str(one))
    (tmp_path / "noimg" / "a").mkdir(parents=True)
    (tmp_path / "noimg" / "b").mkdir(parents=True)
    (tmp_path / "noimg" / "a" / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="hold no images"):
        load_dataset("imagefolder", path=str(tmp_path / "noimg"))


def test_unreadable_image_names_the_file(photos):
    (photos / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="broken.png"):
        load_dataset("imagefolder", path=str(photos), image_size=8)


def test_a_training_run_on_an_image_folder(photos, tmp_path, compose):
    import json

    from cnnbench.run.lifecycle import TrainingRun

    cfg = compose(["dataset=imagefolder", f"dataset.path={photos}", "dataset.image_size=16",
                   "model=mlp", "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
                   "trainer.val_split=0", "trainer.data_on_device=false", "trainer.num_workers=0"])
    metrics = TrainingRun(cfg, tmp_path / "run", {"model": "mlp", "dataset": "imagefolder"}).execute()
    assert metrics["status"] == "completed" and metrics["data_path"] == "streaming"
    assert metrics["test_size"] == 2 and metrics["classes"] == ["cat", "dog"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"


def test_input_shape_of_an_image_folder_without_decoding(photos):
    from cnnbench.data.shapes import input_shape

    shape = input_shape({"name": "imagefolder", "path": str(photos), "image_size": [12, 16]})
    assert (shape.channels, shape.height, shape.width, shape.num_classes) == (3, 12, 16, 2)


@pytest.mark.parametrize("size", ["abc", [1, 2, 3], [8, "x"], 0, True])
def test_a_bad_image_size_is_one_paragraph(photos, size):
    with pytest.raises(UserError, match=r"dataset.image_size=.* is not valid: give a size"):
        load_dataset("imagefolder", path=str(photos), image_size=size)
