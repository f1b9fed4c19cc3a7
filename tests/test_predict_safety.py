"""Doctored checkpoints and exported files given to `predict` and `export`: read as data, never
run, and what they may choose (the class names) shown as plain text."""
from __future__ import annotations

import json

import onnx
import pytest
import torch
from helpers import trained_run, write_pictures
from rich.console import Console

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false", "hydra.run.dir=run"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = trained_run(tmp_path_factory, TINY)
    write_pictures(run.parent / "pics")
    return run


def command(name, args, cwd, monkeypatch):
    """`cnnbench NAME ARGS` in-process, inside the CLI's error boundary: (exit code, output)."""
    from cnnbench.boundary import run_command
    from cnnbench.commands.export.command import main as export_main
    from cnnbench.commands.predict.command import main as predict_main

    monkeypatch.chdir(cwd)
    console = Console(record=True, width=250)
    main = {"predict": predict_main, "export": export_main}[name]
    code = run_command(lambda scope: main([str(a) for a in args], console), console)
    return code, console.export_text()


def doctored(run, path, config=None, data=None):
    import yaml

    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    if config is not None:
        cfg = yaml.safe_load(payload["config"])
        config(cfg)
        payload["config"] = yaml.safe_dump(cfg)
    if data is not None:
        payload["data"] = {**payload["data"], **data}
    torch.save(payload, path)
    return path


def test_a_planted_model_target_runs_nothing(run, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    def plant(cfg):
        cfg["model"] = {"_target_": "numpy.savetxt", "fname": str(marker), "X": [1.0]}

    checkpoint = doctored(run, tmp_path / "planted.pt", config=plant)
    for name, extra in (("predict", [f"inputs={run.parent / 'pics'}"]), ("export", [])):
        code, text = command(name, [f"checkpoint={checkpoint}", *extra], tmp_path, monkeypatch)
        assert code == 2 and "model._target_='numpy.savetxt' is refused" in text, text
        assert not marker.exists() and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("data,why", [
    ({"classes": ["a", "b", "c"]}, "do not fit a mlp for 1x28x28 images and 3 classes"),
    ({"classes": list(range(10))}, "the class name '0' is not a printable text"),
    ({"mean": "os.system"}, "mean='os.system' (1 finite number(s) expected"),
    ({"std": [0.0]}, "std=[0.0] (each must be above 0)"),
    ({"channels": 2}, "channels=2 (1 or 3 expected)"),
    ({"height": 10 ** 9}, "height=1000000000 (a whole number from 1 to 4096"),
    ({"to_gray": "builtins.eval"}, "to_gray='builtins.eval'"),
    ({"format": "pickle"}, "it has no cnnbench-preprocessing-v1 entry"),
])
def test_doctored_preprocessing_is_refused(run, tmp_path, monkeypatch, data, why):
    checkpoint = doctored(run, tmp_path / "doctored.pt", data=data)
    code, text = command("predict", [f"checkpoint={checkpoint}",
                                     f"inputs={run.parent / 'pics'}"], tmp_path, monkeypatch)
    assert code == 2 and why in text, text
    assert "Traceback" not in text and not (tmp_path / "outputs").exists()


def test_class_names_are_shown_as_plain_text(run, tmp_path, monkeypatch):
    names = ["[/oops]", "[bold red]x[/]", "=cmd|' /C calc'!A0", *map(str, range(3, 10))]
    checkpoint = doctored(run, tmp_path / "named.pt", data={"classes": names})
    code, text = command("predict", [f"checkpoint={checkpoint}", f"inputs={run.parent / 'pics'}",
                                     "topk=10", "out=out"], tmp_path, monkeypatch)
    assert code == 0, text
    assert "[/oops]" in text and "[bold red]x[/]" in text
    code, text = command("export", [f"checkpoint={checkpoint}"], tmp_path, monkeypatch)
    assert code == 0 and "[/oops]" in text, text


def exported(run, tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    code, text = command("export", [f"checkpoint={run}", f"out={path}"], tmp_path, monkeypatch)
    assert code == 0, text
    return onnx.load(str(path))


def predict_onnx(proto, run, tmp_path, monkeypatch, name="edited.onnx"):
    onnx.save(proto, str(tmp_path / name))
    return command("predict", [f"checkpoint={tmp_path / name}", f"inputs={run.parent / 'pics'}"],
                   tmp_path, monkeypatch)


def test_doctored_onnx_files_are_refused(run, tmp_path, monkeypatch):
    proto = exported(run, tmp_path, monkeypatch)
    meta = json.loads(proto.metadata_props[0].value)
    proto.metadata_props[0].value = json.dumps({**meta, "channels": 7})
    code, text = predict_onnx(proto, run, tmp_path, monkeypatch)
    assert code == 2 and "channels=7" in text, text
    del proto.metadata_props[:]
    code, text = predict_onnx(proto, run, tmp_path, monkeypatch)
    assert code == 2 and "has no cnnbench metadata" in text, text
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07 not protobuf at all")
    code, text = command("predict", [f"checkpoint={tmp_path / 'junk.onnx'}",
                                     f"inputs={run.parent / 'pics'}"], tmp_path, monkeypatch)
    assert code == 2 and "is not an ONNX model onnxruntime can load" in text, text
    assert not (tmp_path / "outputs").exists()


def test_an_onnx_file_cannot_read_files_beside_it(run, tmp_path, monkeypatch):
    """Weights stored as external data would be read from a path the file names: refused."""
    proto = exported(run, tmp_path, monkeypatch)
    onnx.save(proto, str(tmp_path / "split.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").is_file()
    code, text = command("predict", [f"checkpoint={tmp_path / 'split.onnx'}",
                                     f"inputs={run.parent / 'pics'}"], tmp_path, monkeypatch)
    assert code == 2 and "is not an ONNX model onnxruntime can load" in text, text


def test_a_torchscript_file_is_not_loaded_by_predict(run, tmp_path, monkeypatch):
    code, text = command("export", [f"checkpoint={run}", "format=torchscript",
                                    f"out={tmp_path / 'm.pt'}"], tmp_path, monkeypatch)
    assert code == 0, text
    code, text = command("predict", [f"checkpoint={tmp_path / 'm.pt'}",
                                     f"inputs={run.parent / 'pics'}"], tmp_path, monkeypatch)
    assert code == 2 and "is a TorchScript file" in text and "holds code" in text, text


def test_missing_onnx_packages_are_one_paragraph(run, tmp_path, monkeypatch):
    import sys

    exported(run, tmp_path, monkeypatch)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime: ImportError
    code, text = command("predict", [f"checkpoint={tmp_path / 'model.onnx'}",
                                     f"inputs={run.parent / 'pics'}"], tmp_path, monkeypatch)
    assert code == 2 and "needs onnxruntime, which is not installed here" in text, text
    code, text = command("export", [f"checkpoint={run}", "out=x.onnx"], tmp_path, monkeypatch)
    assert code == 0 and "not checked (onnxruntime is not installed)" in text, text
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, text = command("export", [f"checkpoint={run}", "out=y.onnx"], tmp_path, monkeypatch)
    assert code == 2 and "format=onnx needs the onnx package" in text, text
