"""`cnnbench predict`: a real tiny run, pictures the tests write (PNG and JPEG, RGBA, L, P, RGB,
LA, various sizes), one corrupt file among them, and the mistakes a user makes."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from helpers import assert_png, trained_run, write_pictures
from rich.console import Console

TINY = ["model=lenet", "dataset=synthetic", "dataset.train_size=256", "dataset.test_size=64",
        "trainer.epochs=2", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false", "hydra.run.dir=run"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real `cnnbench train` of LeNet on synthetic 1x28x28 pictures (10 classes)."""
    return trained_run(tmp_path_factory, TINY)


def predict(args, cwd, monkeypatch):
    """`cnnbench predict ARGS` in-process in `cwd`, inside the CLI's error boundary: (exit code,
    what it printed)."""
    from cnnbench.boundary import run_command
    from cnnbench.commands.predict.command import main

    monkeypatch.chdir(cwd)
    console = Console(record=True, width=200)
    code = run_command(lambda scope: main([str(a) for a in args], console), console)
    return code, console.export_text()


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_pictures_of_every_mode_skipping_a_corrupt_one(cli, run, tmp_path):
    pictures = write_pictures(tmp_path / "pics")
    (tmp_path / "pics" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "pics" / ".hidden.png").write_bytes(b"never read")
    proc = cli("predict", f"checkpoint={run}", "inputs=pics", "topk=3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "skipped: pics/broken.png" in proc.stdout
    assert f"{len(pictures)} pictures predicted, 1 skipped: top 3" in proc.stdout
    (out,) = (tmp_path / "outputs" / "predict").iterdir()
    assert "_lenet_synthetic_" in out.name
    rows = read_rows(out / "predictions.csv")
    assert [r["file"] for r in rows] == [f"pics/{p.relative_to(tmp_path / 'pics')}"
                                         for p in pictures] + ["pics/broken.png"]
    for row in rows[:-1]:
        probs = [float(row[k]) for k in ("probability", "top2_probability", "top3_probability")]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert row["predicted"] in [f"class_{i}" for i in range(10)] and not row["error"]
        assert row["predicted"] in proc.stdout
    assert rows[-1]["predicted"] == "" and "Pillow" in rows[-1]["error"]
    assert_png(out / "predictions.png", 700, 200)  # one row of 7


def test_pictures_are_converted_as_the_dataset_was(run, tmp_path):
    """The test set's own images, saved as PNG files, come back as the same uint8 tensors, and
    the model gives them the logits it gives the training loader's batches."""
    from PIL import Image

    from cnnbench.commands.predict.command import predict_files
    from cnnbench.commands.predict.inputs import load_image
    from cnnbench.commands.predict.sources import TorchSource
    from cnnbench.data import DeviceLoader, load_dataset

    data = load_dataset("synthetic", train_size=256, test_size=64)
    files = []
    for i, image in enumerate(data.test.images[:12]):
        files.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(image[0].numpy(), "L").save(files[-1])
    source = TorchSource(run, "cpu")
    for f, image in zip(files, data.test.images):
        assert np.array_equal(load_image(f, source.prep), image.numpy())
    loader = DeviceLoader(data.test.subset(torch.arange(12)), 12, torch.device("cpu"),
                          data.mean, data.std)
    (batch, _), = list(loader)
    expected = source.trained.model(batch).detach()
    outcome = predict_files(source, files, batch_size=5, topk=10)  # batches of 5, 5 and 2
    assert [p.label for p in outcome.predictions] == [data.classes[i] for i in expected.argmax(1)]
    probs = torch.softmax(expected.double(), 1)
    for p, row in zip(outcome.predictions, probs):
        assert [c for c, _ in p.ranked] == [data.classes[i] for i in row.argsort(descending=True)]
        assert max(abs(v - float(row[data.classes.index(c)])) for c, v in p.ranked) < 1e-5


def test_modes_and_sizes_become_the_model_input(tmp_path):
    from PIL import Image

    from cnnbench.commands.predict.inputs import load_image
    from cnnbench.data.preprocessing import Preprocessing

    rgba = Image.new("RGBA", (50, 20), (200, 100, 50, 0))  # fully transparent: alpha dropped
    rgba.save(tmp_path / "rgba.png")
    Image.new("L", (7, 9), 77).convert("P").save(tmp_path / "p.png")
    common = dict(classes=("a", "b"), dataset="x")
    gray = Preprocessing(mean=(0.5,), std=(0.5,), channels=1, height=28, width=14, **common)
    rgb = Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3, channels=3, height=8, width=8, **common)
    first = Preprocessing(mean=(0.5,), std=(0.5,), channels=1, height=4, width=4,
                          to_gray="first_channel", **common)
    assert load_image(tmp_path / "rgba.png", gray).shape == (1, 28, 14)
    assert np.all(load_image(tmp_path / "rgba.png", rgb)[:, 0, 0] == [200, 100, 50])
    assert np.all(load_image(tmp_path / "rgba.png", first) == 200)  # imagefolder's rule
    luminance = round(200 * 0.299 + 100 * 0.587 + 50 * 0.114)
    assert abs(int(load_image(tmp_path / "rgba.png", gray)[0, 5, 5]) - luminance) <= 1
    assert np.all(load_image(tmp_path / "p.png", rgb) == 77)
    assert gray.normalize(np.full((2, 1, 3, 3), 255, np.uint8)).dtype == np.float32
    assert np.allclose(gray.normalize(np.full((1, 1, 1, 1), 255, np.uint8)), 1.0)


def test_batches_topk_and_several_inputs(run, tmp_path, monkeypatch):
    pictures = write_pictures(tmp_path / "pics")
    args = [f"checkpoint={run / 'checkpoints' / 'last.pt'}", "inputs=pics/b_gray.png,pics/more",
            "--inputs", "pics/*.jpg", "pics/a_rgba.png", "topk=50", "batch_size=2", "out=one"]
    code, text = predict(args, tmp_path, monkeypatch)
    assert code == 0, text
    assert "(topk=50 is more than its 10 classes)" in text
    rows = read_rows(tmp_path / "one" / "predictions.csv")
    names = ["b_gray.png", "more/f_rgb.png", "more/g_la.png", "c_photo.jpg", "a_rgba.png"]
    assert [r["file"] for r in rows] == [f"pics/{n}" for n in names]
    assert "top10_probability" in rows[0] and "top11" not in rows[0]
    code, text = predict([f"checkpoint={run}", "inputs=pics", "batch_size=64", "out=two"],
                         tmp_path, monkeypatch)
    assert code == 0, text
    together = {r["file"]: r for r in read_rows(tmp_path / "two" / "predictions.csv")}
    for row in rows:  # batches of 2 or of 7: the same numbers
        same = together[row["file"]]
        assert row["predicted"] == same["predicted"]
        assert abs(float(row["probability"]) - float(same["probability"])) < 1e-5
    assert len(together) == len(pictures)


@pytest.mark.parametrize("args,message", [
    (["inputs=empty"], "the folder empty holds no pictures"),
    (["inputs=nothing.png"], "nothing.png does not exist"),
    (["inputs='nope/*.png'"], "matches no file"),
    (["inputs=bad.png"], "None of the 1 file(s) could be read as a picture: bad.png"),
    (["inputs=good.png", "checkpoint=notes.txt"], "notes.txt is not a cnnbench checkpoint"),
    (["inputs=good.png", "checkpoint=missing"], "No checkpoint at missing"),
    (["inputs=good.png", "topk=0"], "topk=0 is not valid"),
    (["inputs=good.png", "trainer.device=tpu"], "trainer.device=tpu is not valid"),
    (["inputs=good.png", "evaluation.shifts=[1]"], "is not an option of `cnnbench predict`"),
])
def test_bad_input_is_one_paragraph(run, tmp_path, monkeypatch, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.png").write_text("not a picture")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    write_pictures(tmp_path / "pics")
    shutil.copy(tmp_path / "pics" / "b_gray.png", tmp_path / "good.png")
    checkpoint = [] if any(a.startswith("checkpoint=") for a in args) else [f"checkpoint={run}"]
    code, text = predict([*checkpoint, *[a.replace("'", "") for a in args]], tmp_path,
                         monkeypatch)
    assert code == 2 and message in text, text
    assert text.startswith("error:") and "Traceback" not in text
    assert not (tmp_path / "outputs").exists()


def test_a_checkpoint_from_before_the_data_entry_still_predicts(run, tmp_path, monkeypatch):
    """Older checkpoints have no `data` entry: classes and normalization come from the dataset."""
    write_pictures(tmp_path / "pics")
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["data"]["classes"] == [f"class_{i}" for i in range(10)]
    del payload["data"]
    torch.save(payload, tmp_path / "old.pt")
    for name, checkpoint in (("new", run), ("old", tmp_path / "old.pt")):
        code, text = predict([f"checkpoint={checkpoint}", "inputs=pics", f"out={name}"],
                             tmp_path, monkeypatch)
        assert code == 0, text
    assert read_rows(tmp_path / "new" / "predictions.csv") == read_rows(
        tmp_path / "old" / "predictions.csv")


@pytest.mark.parametrize("channels", [1, 3])
def test_an_imagefolder_model_gets_its_folders_decoding(tmp_path, channels):
    """For dataset=imagefolder, a picture becomes exactly what the folder's decoder made of it
    in training (RGB, bilinear to size, the first channel for one-channel models)."""
    from cnnbench.commands.predict.inputs import load_image
    from cnnbench.data.folder import _decode
    from cnnbench.data.preprocessing import Preprocessing

    prep = Preprocessing(("a", "b"), (0.5,) * channels, (0.2,) * channels, channels, 20, 12,
                         to_gray="first_channel", dataset="imagefolder")
    for f in write_pictures(tmp_path):
        decoded = _decode(f, (20, 12))[0].transpose(2, 0, 1)[:channels]
        assert np.array_equal(load_image(f, prep), decoded), f
