"""`cnnbench data`: a dataset's splits, classes, normalization and pictures, before training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_png
from PIL import Image

import cnnbench
from cnnbench.cli import main
from cnnbench.commands.completion import query
from cnnbench.commands.data.samples import MAX_CLASSES
from cnnbench.data import load_dataset
from cnnbench.data.mnist import FASHION_CLASSES
from cnnbench.errors import UserError

SMALL_SYNTHETIC = ["dataset=synthetic", "dataset.train_size=200", "dataset.test_size=50"]


def data_json(capsys, *args: str) -> dict:
    """`cnnbench data ARGS json=true`: the summary on stdout, which equals data.json."""
    assert main(["data", *args, "json=true"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert json.loads(Path(summary["files"]["data"]).read_text()) == summary
    return summary


def check_counts(summary: dict) -> None:
    """Every split's class counts add up to its size, and the sizes to the total."""
    sizes, counts = summary["sizes"], summary["class_counts"]
    assert list(counts) == [s for s in ("train", "val", "test") if s in sizes]
    for split, per_class in counts.items():
        assert len(per_class) == summary["num_classes"] and sum(per_class) == sizes[split]
    assert sum(sizes[s] for s in counts) == sizes["total"]


def check_pictures(summary: dict) -> None:
    assert_png(Path(summary["files"]["class_counts"]), min_width=400)
    assert_png(Path(summary["files"]["samples"]), min_width=250)


def test_mnist_format_files(capsys, fashion_root, tmp_path):
    s = data_json(capsys, "dataset=fashion_mnist", f"dataset.root={fashion_root}",
                  "dataset.download=false", "trainer.val_split=0.25", "trainer.seed=3",
                  f"out={tmp_path / 'out'}", "samples=3")
    assert s["dataset"] == "fashion_mnist" and s["image_shape"] == [1, 28, 28]
    assert s["classes"] == FASHION_CLASSES and s["num_classes"] == 10
    assert s["sizes"] == {"train": 90, "val": 30, "test": 40, "total": 160}
    assert s["split"] == {"val_split": 0.25, "seed": 3}
    check_counts(s)
    assert s["class_counts"]["test"] == [4] * 10  # the fixture's labels: 0..9 in turn
    assert [a + b for a, b in zip(s["class_counts"]["train"], s["class_counts"]["val"])] == [12] * 10
    used, measured = s["normalization"]["used"], s["normalization"]["measured"]
    assert used["source"] == "fixed" and used["mean"] == [0.2860] and used["std"] == [0.3530]
    assert measured["images"] == 90 and abs(measured["mean"][0] - 0.5) < 0.02  # uniform noise
    assert s["samples"]["per_class"] == 3 and "imagefolder" not in s
    assert s["read_from"] == {"path": str(fashion_root / "FashionMNIST" / "raw"),
                              "shipped_inside_cnnbench": False}
    check_pictures(s)


def test_real_mnist_with_the_default_split(capsys, mnist_root, tmp_path):
    assert main(["data", "dataset=mnist", f"dataset.root={mnist_root}", "dataset.download=false",
                 f"out={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "1x28x28" in out and "54,000" in out and "6,000" in out and "10,000" in out
    assert "fixed constants" in out and "0.1307" in out
    assert f"read from {mnist_root / 'MNIST' / 'raw'}\n" in out and "inside cnnbench" not in out
    s = json.loads((tmp_path / "data.json").read_text())
    assert s["read_from"] == {"path": str(mnist_root / "MNIST" / "raw"),
                              "shipped_inside_cnnbench": False}
    check_counts(s)
    assert s["sizes"] == {"train": 54000, "val": 6000, "test": 10000, "total": 70000}
    assert abs(s["normalization"]["measured"]["mean"][0] - 0.1307) < 0.002
    check_pictures(s)


def test_mnist_without_files_says_it_read_the_copy_shipped_inside_cnnbench(capsys, tmp_path):
    empty = tmp_path / "empty"
    assert main(["data", "dataset=mnist", f"dataset.root={empty}", "dataset.download=false",
                 f"out={tmp_path / 'out'}", "samples=1"]) == 0
    out = capsys.readouterr().out
    shipped = Path(cnnbench.__file__).parent / "data" / "embedded_mnist"
    assert f"read from the copy shipped inside cnnbench: {shipped}" in out, out
    s = json.loads((tmp_path / "out" / "data.json").read_text())
    assert s["read_from"] == {"path": str(shipped), "shipped_inside_cnnbench": True}
    assert not empty.exists()


def test_synthetic_data_says_no_files_were_read(capsys, tmp_path):
    s = data_json(capsys, *SMALL_SYNTHETIC, f"out={tmp_path}", "samples=1")
    assert s["read_from"] is None


def test_a_hundred_classes_are_drawn_readably(capsys, tmp_path):
    s = data_json(capsys, *SMALL_SYNTHETIC, "dataset.num_classes=100", f"out={tmp_path}")
    check_counts(s)
    assert s["samples"]["classes_shown"] == s["classes"][:MAX_CLASSES]
    _, height = assert_png(Path(s["files"]["class_counts"]))
    assert height >= 100 * 12  # a row of at least 12 pixels per class
    width, height = assert_png(Path(s["files"]["samples"]))
    assert height < 2000 and width < 1200  # MAX_CLASSES rows of 8 samples, not 100


@pytest.mark.parametrize("val_split, seed", [(0.2, 5), (0.0, 1)])
def test_the_split_is_the_one_a_training_run_records(capsys, compose, tmp_path, val_split, seed):
    from cnnbench.run.lifecycle import TrainingRun

    options = [*SMALL_SYNTHETIC, f"trainer.val_split={val_split}", f"trainer.seed={seed}"]
    s = data_json(capsys, *options, f"out={tmp_path / 'data'}")
    cfg = compose([*options, "model=mlp", "trainer.epochs=1", "trainer.device=cpu",
                   "trainer.progress=false", "evaluation.plots=false"])
    metrics = TrainingRun(cfg, tmp_path / "run", {"model": "mlp", "dataset": "synthetic"}).execute()
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert {k: recorded[f"{k}_size"] for k in ("train", "val", "test")} == {
        k: s["sizes"].get(k, 0) for k in ("train", "val", "test")}
    assert ("val" in s["class_counts"]) == (val_split > 0)
    check_counts(s)


def write_image(path: Path, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """Two classes of images of several sizes, with a corrupt image and files the loader skips."""
    root = tmp_path / "photos"
    for i in range(6):
        write_image(root / "cat" / f"{i}.png", (40, 30) if i < 4 else (64, 48), 30 + i)
        write_image(root / "dog" / f"{i}.png", (40, 30) if i < 2 else (20 + i, 90), 200 + i)
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    (root / "dog" / "notes.txt").write_text("good dogs")
    (root / "dog" / ".thumbs.png").write_bytes(b"hidden")
    write_image(root / "stray.png", (8, 8), 1)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main")
    return root


def test_an_image_folder_lists_what_it_skips_and_the_original_sizes(capsys, messy_folder,
                                                                     tmp_path):
    with pytest.raises(UserError, match="broken.png"):  # a training run stops on it
        load_dataset("imagefolder", path=str(messy_folder), image_size=16)
    s = data_json(capsys, "dataset=imagefolder", f"dataset.path={messy_folder}",
                  "dataset.image_size=16", "trainer.val_split=0.2", f"out={tmp_path / 'out'}")
    assert s["classes"] == ["cat", "dog"] and s["image_shape"] == [3, 16, 16]
    assert s["sizes"]["total"] == 12  # the broken file left out
    check_counts(s)
    folder = s["imagefolder"]
    skipped = {item["file"]: item for item in folder["skipped"]}
    assert set(skipped) == {"cat/broken.png", "dog/notes.txt", "dog/.thumbs.png", "stray.png",
                            ".git/"}
    assert skipped["cat/broken.png"]["stops_run"] and folder["unreadable_count"] == 1
    assert "a training run stops" in skipped["cat/broken.png"]["reason"]
    assert "not an image extension" in skipped["dog/notes.txt"]["reason"]
    assert "hidden" in skipped["dog/.thumbs.png"]["reason"] and "1 file" in skipped[".git/"]["reason"]
    assert "not in a class subfolder" in skipped["stray.png"]["reason"]
    sizes = folder["original_sizes"]
    assert folder["files_used"] == sizes["images"] == 12
    assert sizes["width"] == {"min": 22, "median": 40.0, "max": 64}
    assert sizes["height"] == {"min": 30, "median": 39.0, "max": 90}
    assert sizes["most_common"][0] == {"width": 40, "height": 30, "images": 6}
    assert sizes["distinct_sizes"] == 6 and sizes["modes"] == {"RGB": 12}
    assert s["normalization"]["used"]["source"] == "computed"
    check_pictures(s)


def test_an_image_folder_on_the_terminal(capsys, messy_folder, tmp_path):
    assert main(["data", "dataset=imagefolder", f"dataset.path={messy_folder}",
                 f"out={tmp_path}"]) == 0
    out = capsys.readouterr().out
    for text in ("cat/broken.png", "stray.png", "Original image sizes", "40x30 (6)",
                 "a training run stops on it"):
        assert text in out, text


def one_paragraph(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in text, text
    return lines[0]


def test_a_missing_dataset_is_the_runs_paragraph(cli, tmp_path):
    args = ["dataset=fashion_mnist", f"dataset.root={tmp_path / 'nothing'}",
            "dataset.download=false"]
    data = cli("data", *args, cwd=tmp_path)
    train = cli("train", *args, "trainer.epochs=1", cwd=tmp_path)
    assert data.returncode == train.returncode == 2
    said = one_paragraph(data.stdout + data.stderr)
    assert said == one_paragraph(train.stdout + train.stderr)
    assert "not on disk" in said and "dataset.root=" in said
    assert not (tmp_path / "outputs" / "data").exists()


@pytest.mark.parametrize("args, expected", [
    (["dataset=mnist", "samples=0"], "samples=0 is not valid"),
    (["dataset=mnist", "samples=many"], "samples=many is not valid"),
    (["dataset=mnist", "trainer.epochs=3"], "is not an option of `cnnbench data`"),
    (["dataset=mnist", "colour=red"], "no config group or setting named 'colour'"),
    (["dataset=imagenet"], "dataset=imagenet is not a dataset"),
    (["dataset=synthetic", "trainer.val_split=1.5"], "trainer.val_split=1.5 is not valid"),
    (["dataset=synthetic", "dataset.num_classes=0"], "dataset.num_classes=0"),
    (["dataset=imagefolder"], "dataset.path"),
    (["dataset=mnist", "json=maybe"], "json=maybe is not true or false"),
])
def test_bad_options_are_one_paragraph(capsys, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    assert main(["data", *args]) == 2
    assert expected in one_paragraph(capsys.readouterr().out)
    assert not (tmp_path / "outputs").exists()


def test_default_folder_help_and_completion(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", *SMALL_SYNTHETIC, "--samples", "2"]) == 0
    [folder] = (tmp_path / "outputs" / "data").iterdir()
    assert "_synthetic_" in folder.name
    assert {p.name for p in folder.iterdir()} == {"data.json", "class_counts.png", "samples.png"}
    capsys.readouterr()
    assert main(["data", "--help"]) == 0 and "samples=N" in capsys.readouterr().out
    assert main(["--help"]) == 0 and "data dataset=" in capsys.readouterr().out
    assert query("cnnbench data sa", ["data"]) == ["samples="]
    assert "trainer.val_split=" in query("cnnbench data trainer.", ["data"])
