"""A command line refused for a user's mistake (an unknown option, a bad value, a missing
argument, a path that does not exist) ends before torch is imported: about 0.3 s instead of
1.8 s. Each refusal runs as a real subprocess under `python -X importtime`, whose report on
stderr names every module imported; none may be torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

IMPORTTIME = "import time:"


def imports_torch(stderr: str) -> bool:
    """Whether `-X importtime`'s report names the module torch itself (its last column, as
    `import time:   self |   cumulative |   torch`; nested imports are indented there)."""
    return any(line.startswith(IMPORTTIME) and line.rsplit("|", 1)[-1].strip() == "torch"
               for line in stderr.splitlines())


def refuse(args: list[str], cwd: Path) -> tuple[int, str, bool]:
    """`cnnbench ARGS` run in `cwd`: its exit code, what it printed (the import report left
    out) and whether it imported torch."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cnnbench", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    said = [line for line in proc.stderr.splitlines() if not line.startswith(IMPORTTIME)]
    return proc.returncode, proc.stdout + "\n".join(said), imports_torch(proc.stderr)


def check_refused(args: list[str], says: str, cwd: Path) -> None:
    code, out, torch_imported = refuse(args, cwd)
    assert code == 2, out
    assert says in out and out.lstrip().startswith("error:"), out
    assert "Traceback" not in out, out
    assert not torch_imported, f"cnnbench {' '.join(args)} imported torch before refusing"
    assert list(cwd.iterdir()) == [], "a refused command wrote nothing"


def test_the_torch_check_reads_the_module_column_of_the_import_report():
    assert imports_torch("import time:       512 |     1603512 |   torch\n")
    assert imports_torch("import time: 3 | 9 | torch")
    assert not imports_torch("import time:       512 |        812 |     torch.nn\n"
                             "import time:        88 |         88 |   torchvision\n"
                             "error: torch is mentioned | torch")


@pytest.mark.parametrize("args,says", [
    (["/nonexistent"], "'/nonexistent' is not a key=value argument"),
    (["checkpoint=nothing.pt", "modle=mlp"], "did you mean model=mlp?"),
    (["checkpoint=nothing.pt", "model=mlp"], "'model=mlp' cannot be changed by `cnnbench eval`"),
    (["out=ev"], "`cnnbench eval` needs checkpoint=PATH."),
])
def test_a_refused_eval_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["eval", *args], says, tmp_path)


@pytest.mark.parametrize("args,says", [
    (["checkpoint=/nonexistent", "inputs=x"], "No pictures to predict: x does not exist"),
    (["inputs=x"], "`cnnbench predict` needs checkpoint=PATH."),
    (["checkpoint=c.pt", "inputs=x", "topk=0"], "topk=0 is not valid"),
])
def test_a_refused_predict_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["predict", *args], says, tmp_path)


@pytest.mark.parametrize("args,says", [
    (["--bogus"], "'--bogus' is not an option of `cnnbench export`."),
    (["checkpoint=run", "format=zip"], "format=zip is not an export format: onnx or torchscript"),
    (["out=model.onnx"], "`cnnbench export` needs checkpoint=PATH."),
])
def test_a_refused_export_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["export", *args], says, tmp_path)


@pytest.mark.parametrize("args,says", [
    (["dataset=mnist", "samples=0"], "samples=0 is not valid"),
    (["dataset=imagenet"], "dataset=imagenet is not a dataset"),
    (["trainer.epochs=3"], "'trainer.epochs=3' is not an option of `cnnbench data`"),
    (["dataset=synthetic", "trainer.val_split=1.5"], "trainer.val_split=1.5 is not valid"),
])
def test_a_refused_data_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["data", *args], says, tmp_path)


@pytest.mark.parametrize("args,says", [
    (["num_steps=3"], "num_steps=3 is not valid"),
    (["optimizer.lrr=0.1"], "did you mean optimizer.lr?"),
    (["--bogus"], "'--bogus' is not an option of `cnnbench lr-find`"),
    (["model=lenett"], "did you mean model=lenet?"),
])
def test_a_refused_lr_find_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["lr-find", *args], says, tmp_path)


@pytest.mark.parametrize("args,says", [
    (["model=lenett"], "did you mean model=lenet?"),
    (["dataset=imagenet"], "dataset=imagenet is not a dataset"),
    (["--bogus"], "Unknown option(s) --bogus for `cnnbench models`."),
    (["json=maybe"], "json=maybe is not true or false"),
])
def test_a_refused_models_command_line_never_imports_torch(tmp_path, args, says):
    check_refused(["models", *args], says, tmp_path)


@pytest.mark.parametrize("command", ["eval", "export", "predict"])
@pytest.mark.parametrize("given,says", [
    ("missing.pt", "the file does not exist"),
    ("empty.pt", "is empty (0 bytes)"),
    ("folder", "the file does not exist"),  # a folder without checkpoints/last.pt
])
def test_a_path_that_holds_no_checkpoint_is_refused_before_torch(tmp_path, command, given,
                                                                 says):
    there, cwd = tmp_path / "given", tmp_path / "cwd"
    (there / "folder").mkdir(parents=True)
    (there / "empty.pt").write_bytes(b"")
    (there / "pic.png").write_bytes(b"")
    cwd.mkdir()
    inputs = [f"inputs={there / 'pic.png'}"] if command == "predict" else []
    check_refused([command, f"checkpoint={there / given}", *inputs], says, cwd)


@pytest.mark.parametrize("command,args,says", [
    ("train", ["optimizer.lr=inf"], "optimizer.lr=inf is not valid"),
    ("train", ["trainer.epochs=0"], "trainer.epochs=0 is not valid"),
    ("train", ["model=mlp", "model.hidden=[0]"], "model.hidden=[0] is not valid"),
    ("train", ["evaluation.shifts=[-1]"], "evaluation.shifts=[-1] is not valid"),
    ("train", ["optimizer.backbone_lr_scale=0"], "optimizer.backbone_lr_scale=0 is not valid"),
    ("lr-find", ["optimizer.lr=inf"], "optimizer.lr=inf is not valid"),
    ("train", ["dataset=imagefolder"], "dataset=imagefolder needs the folder of your images"),
    ("train", ["dataset=imagefolder", "dataset.path=p", "dataset.channels=2"],
     "dataset.channels=2 is not valid"),
    ("train", ["dataset=imagefolder", "dataset.path=p", "dataset.test_split=1"],
     "dataset.test_split=1 is not valid"),
    ("train", ["dataset=synthetic", "dataset.num_classes=1"],
     "dataset.num_classes=1 is not valid for dataset=synthetic"),
    ("lr-find", ["dataset=synthetic", "dataset.train_size=0"],
     "dataset.train_size=0 is not valid for dataset=synthetic"),
])
def test_a_value_of_the_composed_config_is_refused_before_torch(tmp_path, command, args, says):
    check_refused([command, *args], says, tmp_path)
