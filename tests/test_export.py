"""`cnnbench export`: ONNX (read back with onnxruntime) and TorchScript (torch.jit.load) files
that compute what the checkpoint's model computes on real pictures, with batch sizes 1 and 7,
and carry the classes and preprocessing in their metadata."""
from __future__ import annotations

import csv
import hashlib
import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import trained_run, write_pictures
from rich.console import Console

TINY = ["model=lenet", "dataset=synthetic", "dataset.channels=3", "dataset.image_size=24",
        "dataset.num_classes=5", "dataset.train_size=256", "dataset.test_size=64",
        "trainer.epochs=2", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false", "hydra.run.dir=run"]
CLASSES = [f"class_{i}" for i in range(5)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real `cnnbench train` of LeNet on synthetic RGB 24x24 pictures (5 classes)."""
    return trained_run(tmp_path_factory, TINY)


@pytest.fixture(scope="module")
def batches(run, tmp_path_factory):
    """Real pictures as the model takes them: written files (every mode) converted by predict's
    pipeline, then the dataset's own test images; as batches of 1 and of 7."""
    from cnnbench.commands.predict.inputs import load_image
    from cnnbench.data import load_dataset
    from cnnbench.run.trained import load_trained

    prep = load_trained(run).prep
    files = write_pictures(tmp_path_factory.mktemp("pictures"))
    pictures = np.stack([load_image(f, prep) for f in files])
    test = load_dataset("synthetic", channels=3, image_size=24, num_classes=5, train_size=256,
                        test_size=64).test.images[:7].numpy()
    return [prep.normalize(pictures[:1]), prep.normalize(pictures), prep.normalize(test)]


def export(args, cwd, monkeypatch):
    from cnnbench.boundary import run_command
    from cnnbench.commands.export.command import main

    monkeypatch.chdir(cwd)
    console = Console(record=True, width=200)
    code = run_command(lambda scope: main([str(a) for a in args], console), console)
    return code, console.export_text()


def expected(run, batch):
    from cnnbench.run.trained import load_trained

    with torch.no_grad():
        return load_trained(run).model(torch.from_numpy(batch)).numpy()


def check_metadata(meta, run):
    checkpoint = run / "checkpoints" / "last.pt"
    assert meta["classes"] == CLASSES and meta["input_shape"] == [3, 24, 24]
    assert meta["mean"] == [0.5] * 3 and meta["std"] == [0.25] * 3
    assert meta["model"] == "lenet" and meta["dataset"] == "synthetic" and meta["epoch"] == 2
    assert meta["checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def test_onnx_export_matches_pytorch(run, batches, tmp_path, monkeypatch):
    code, text = export([f"checkpoint={run}"], tmp_path, monkeypatch)  # format=onnx: the default
    assert code == 0, text
    path = run / "export" / "last.onnx"
    assert f"exported: {path}" in text and "vs PyTorch (batches of 1 and 3)" in text
    proto = onnx.load(str(path))
    check_metadata(json.loads({p.key: p.value for p in proto.metadata_props}["cnnbench"]), run)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    for batch in batches:  # 1, 7 and 7 pictures through one file
        (logits,) = session.run(None, {"input": batch})
        assert logits.shape == (len(batch), 5)
        assert np.abs(logits - expected(run, batch)).max() <= 1e-4


def test_torchscript_export_matches_pytorch(run, batches, tmp_path, monkeypatch):
    code, text = export([f"checkpoint={run / 'checkpoints' / 'last.pt'}", "format=torchscript",
                         f"out={tmp_path / 'models'}/"], tmp_path, monkeypatch)
    assert code == 0, text
    path = tmp_path / "models" / "last.torchscript.pt"
    extra = {"cnnbench.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notes
        module = torch.jit.load(str(path), _extra_files=extra)
    check_metadata(json.loads(extra["cnnbench.json"]), run)
    for batch in batches:
        with torch.no_grad():
            logits = module(torch.from_numpy(batch)).numpy()
        assert logits.shape == (len(batch), 5)
        assert np.abs(logits - expected(run, batch)).max() <= 1e-4


def test_predict_with_the_onnx_file_agrees_with_the_checkpoint(run, tmp_path, monkeypatch):
    from cnnbench.commands.predict.command import main

    write_pictures(tmp_path / "pics")
    code, text = export([f"checkpoint={run}", f"out={tmp_path / 'model.onnx'}"], tmp_path,
                        monkeypatch)
    assert code == 0, text
    rows = {}
    for name, checkpoint in (("torch", run), ("onnx", tmp_path / "model.onnx")):
        console = Console(record=True, width=200)
        assert main([f"checkpoint={checkpoint}", "inputs=pics", f"out={name}"], console) == 0
        assert "input: RGB 24x24, bilinear" in console.export_text()
        with open(tmp_path / name / "predictions.csv", newline="") as f:
            rows[name] = list(csv.DictReader(f))
    assert len(rows["onnx"]) == 7
    for a, b in zip(rows["torch"], rows["onnx"]):
        assert (a["file"], a["predicted"]) == (b["file"], b["predicted"])
        assert abs(float(a["probability"]) - float(b["probability"])) < 1e-5


def test_alexnet_pooling_exports_to_onnx(tmp_path):
    """AlexNet's 6x6 adaptive pooling of a 3x3 map has no ONNX operator: it is exported as the
    same average written as matrix products."""
    from cnnbench.commands.export.formats import onnx_bytes
    from cnnbench.data.preprocessing import Preprocessing
    from cnnbench.models import build_model, model_config
    from cnnbench.run.trained import Trained

    prep = Preprocessing(tuple("abc"), (0.1,), (0.3,), 1, 28, 28, dataset="mnist")
    model = build_model(model_config("alexnet"), in_channels=1, image_size=(28, 28),
                        num_classes=3).eval()
    (tmp_path / "x.pt").write_bytes(b"weights")
    trained = Trained(tmp_path / "x.pt", {"epoch": 0}, model, prep, "alexnet", "cpu")
    session = ort.InferenceSession(onnx_bytes(trained), providers=["CPUExecutionProvider"])
    x = torch.randn(7, 1, 28, 28)
    with torch.no_grad():
        assert np.abs(session.run(None, {"input": x.numpy()})[0] - model(x).numpy()).max() < 1e-4


@pytest.mark.parametrize("args,message", [
    (["format=tflite"], "format=tflite is not an export format: onnx or torchscript"),
    (["checkpoint=notes.txt"], "notes.txt is not a cnnbench checkpoint"),
    (["checkpoint=missing"], "No checkpoint at missing"),
    (["out=/proc/nope/model.onnx"], "Cannot write /proc/nope/model.onnx"),
    (["dataset=mnist"], "is not an option of `cnnbench export`"),
])
def test_export_mistakes_are_one_paragraph(run, tmp_path, monkeypatch, args, message):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    checkpoint = [] if any(a.startswith("checkpoint=") for a in args) else [f"checkpoint={run}"]
    code, text = export([*checkpoint, *args], tmp_path, monkeypatch)
    assert code == 2 and text.startswith("error:") and message in text, text
