"""Every number of the groups built into objects (optimizer, scheduler, augmentation, model) is
finite and in its key's range before anything is built: train and lr-find refuse the rest in one
paragraph instead of diverging later, and eval, predict and export refuse a stored config with
such a number in the same paragraph."""
from __future__ import annotations

import math

import pytest
from conftest import run_cli
from test_boundary import error_line

from cnnbench.errors import UserError
from cnnbench.settings.learning_rate import check_lr
from cnnbench.settings.numbers import RANGES, check_numbers

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=128", "dataset.test_size=32",
        "trainer.device=cpu", "trainer.epochs=1", "trainer.progress=false",
        "evaluation.plots=false"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("group,key", [(group, key) for group in RANGES
                                       for key in [*sorted(RANGES[group]), "some_new_key"]])
def test_a_number_that_is_not_finite_is_refused_for_every_key_of_every_group(group, key, value):
    with pytest.raises(UserError, match=rf"{group}\.{key}=.* is not valid"):
        check_numbers(group, {key: [0.9, value] if key == "betas" else value})


@pytest.mark.parametrize("group,key,bad,good", [
    ("optimizer", "momentum", 1.5, 0.9), ("optimizer", "weight_decay", -1e-4, 0.0),
    ("optimizer", "betas", [0.9, 1.0], [0.9, 0.999]), ("optimizer", "eps", 0.0, 1e-8),
    ("optimizer", "lr", 0.0, 0.1),
    ("scheduler", "pct_start", 1.2, 0.3), ("scheduler", "div_factor", 0, 25.0),
    ("scheduler", "final_div_factor", -1.0, 1e4), ("scheduler", "factor", 1.0, 0.1),
    ("scheduler", "patience", -1, 0), ("scheduler", "min_lr", -1e-6, 0.0),
    ("scheduler", "eta_min", -0.1, 0.0),
    ("augmentation", "crop_padding", -3, 4), ("augmentation", "rotation", 200.0, 15.0),
    ("augmentation", "erasing", 1.5, 0.5), ("augmentation", "mixup", -0.2, 0.2),
    ("augmentation", "mix_prob", 2.0, 1.0), ("augmentation", "auto_magnitude", 31, 9),
    ("model", "dropout", 1.0, 0.5), ("model", "hidden", [200, 0], [200, 150]),
    ("model", "widths", [64, -1], [64, 128]), ("model", "width", 0, 64),
])
def test_a_value_outside_its_keys_range_is_refused_and_one_inside_is_kept(group, key, bad, good):
    with pytest.raises(UserError, match=rf"{group}\.{key}=.* is not valid: it must be"):
        check_numbers(group, {key: bad})
    check_numbers(group, {key: good, "_target_": "some.Class", "flag": True, "name": "x"})


def test_the_example_of_a_list_key_is_a_list_when_the_value_is_one():
    with pytest.raises(UserError, match=r"e\.g\. model\.hidden=\[128\] "):
        check_numbers("model", {"hidden": [200, 0]})
    with pytest.raises(UserError, match=r"e\.g\. model\.hidden=128 "):
        check_numbers("model", {"hidden": 0})


@pytest.mark.parametrize("lr", [math.inf, 1e400, -1.0, 0.0, math.nan, "abc", True])
def test_a_learning_rate_that_is_not_a_finite_positive_number_is_refused(lr):
    with pytest.raises(UserError, match="must be a finite number above 0"):
        check_lr(lr)


@pytest.mark.parametrize("command,override,named", [
    (command, override, named) for override, named, commands in [
        ("optimizer.lr=inf", "optimizer.lr=inf", ("train", "lr-find")),
        ("optimizer=sgd optimizer.momentum=nan", "optimizer.momentum=nan", ("train", "lr-find")),
        ("scheduler=onecycle scheduler.div_factor=0", "scheduler.div_factor=0", ("train",)),
        ("scheduler=plateau scheduler.factor=nan", "scheduler.factor=nan", ("train",)),
        ("augmentation=flip_crop +augmentation.mixup=nan", "augmentation.mixup=nan",
         ("train", "lr-find")),
        ("augmentation=affine augmentation.rotation=inf", "augmentation.rotation=inf",
         ("train",)),
        ("augmentation=flip_crop augmentation.crop_padding=-3", "augmentation.crop_padding=-3",
         ("train",)),
        ("model.hidden=[0]", "model.hidden=[0]", ("train", "lr-find")),
        ("model=speed_cnn model.dropout=nan", "model.dropout=nan", ("train",)),
    ] for command in commands])
def test_train_and_lr_find_refuse_a_number_that_would_break_the_run_later(
        tmp_path, command, override, named):
    proc = run_cli(command, *TINY, *override.split(), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc.stdout + proc.stderr)
    assert f"{named} is not valid" in line, line
    assert "diverged" not in line.split("is not valid")[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("numbers")
    run_cli("train", *TINY, f"hydra.run.dir={cwd / 'run'}", cwd=cwd, check=True)
    return cwd / "run"


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
def test_a_stored_config_with_a_number_out_of_range_is_refused_by_every_reader(
        trained, tmp_path, command):
    """The config a checkpoint carries is built through the same check (settings.plain)."""
    import torch
    from helpers import write_pictures

    payload = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)
    assert "hidden:\n  - 200\n" in payload["config"], payload["config"]
    payload["config"] = payload["config"].replace("hidden:\n  - 200\n", "hidden:\n  - 0\n")
    checkpoint = tmp_path / "edited.pt"
    torch.save(payload, checkpoint)
    write_pictures(tmp_path / "pictures")
    args = {"eval": [f"out={tmp_path / 'eval'}"],
            "predict": [f"inputs={tmp_path / 'pictures'}", f"out={tmp_path / 'predict'}"],
            "export": ["format=torchscript", f"out={tmp_path / 'model.pt'}"]}[command]
    proc = run_cli(command, f"checkpoint={checkpoint}", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc.stdout + proc.stderr)
    assert "model.hidden=[0, 150] is not valid: it must be a finite whole number" in line, line


@pytest.mark.parametrize("group,key", [(group, key) for group in RANGES for key in RANGES[group]])
def test_the_example_each_refusal_gives_is_a_value_its_key_accepts(group, key):
    import yaml

    value = yaml.safe_load(RANGES[group][key].example)
    value = float(value) if isinstance(value, str) else value  # YAML reads 1e-8 as text
    items = value if isinstance(value, list) else [value]
    assert all(isinstance(v, (int, float)) for v in items), value
    check_numbers(group, {key: value})
