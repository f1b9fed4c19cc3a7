"""`cnnbench models`: every model sized for a dataset, from a shape table, not from its files."""
from __future__ import annotations

import json

import pytest

from cnnbench.cli import main
from cnnbench.commands.models import describe, zoo
from cnnbench.data.shapes import SHAPES, InputShape, input_shape
from cnnbench.errors import UserError
from cnnbench.models import model_names

# The counts the seeds state (or that their code implies), per dataset
SEED_COUNTS = {
    "cifar100": {"cnn_simple": 275_396, "cnn2": 10_492, "mlp_small": 275_255,
                 "lenet_sigmoid": 90_776, "alexnet_small": 24_711_140},
    "mnist": {"lenet": 44_426, "mlp": 188_660, "net1": 1_625_866, "net2": 1_625_866},
    "cifar10": {"net1": 2_117_962, "alexnet": 56_826_698, "vgg": 5_352_778,
                "resnet18": 11_173_962},
}


def test_shape_table_matches_the_files(mnist_root, fashion_root):
    from cnnbench.data import load_dataset

    for name, root in (("mnist", mnist_root), ("fashion_mnist", fashion_root)):
        data = load_dataset(name, root=str(root), download=False)
        shape = SHAPES[name]
        assert (data.channels, *data.image_size, data.num_classes) == (
            shape.channels, shape.height, shape.width, shape.num_classes)


def test_synthetic_shape_comes_from_its_config(compose):
    from cnnbench.data import load_dataset

    cfg = compose(["dataset=synthetic", "dataset.image_size=20", "dataset.channels=3",
                   "dataset.num_classes=4", "dataset.train_size=8", "dataset.test_size=8"])
    shape = input_shape(cfg.dataset)
    assert shape == InputShape(3, 20, 20, 4)
    data = load_dataset(**{k: v for k, v in cfg.dataset.items()})
    assert (data.channels, *data.image_size, data.num_classes) == (3, 20, 20, 4)
    with pytest.raises(UserError, match="No input shape"):
        input_shape({"name": "imagenet"})


@pytest.mark.parametrize("dataset", sorted(SEED_COUNTS))
def test_zoo_lists_every_model_with_the_seed_counts(dataset):
    rows = {r.model: r for r in zoo(SHAPES[dataset])}
    assert set(rows) == set(model_names())
    for name, count in SEED_COUNTS[dataset].items():
        assert rows[name].params == count, name
    assert all(r.error is None and r.output_shape == [SHAPES[dataset].num_classes]
               for r in rows.values())


def test_zoo_counts_on_meta_equal_a_real_build():
    shape = SHAPES["cifar10"]
    for name in ("lenet", "net2", "vgg", "cnn2"):
        meta, real = describe(name, shape), describe(name, shape, device="cpu")
        assert (meta.params, meta.output_shape) == (real.params, real.output_shape)


def test_zoo_says_why_a_model_cannot_take_the_input():
    rows = {r.model: r for r in zoo(InputShape(1, 10, 10, 10))}
    assert rows["lenet"].params is None and "16x16" in rows["lenet"].error
    assert "14x14" in rows["alexnet_small"].error
    assert rows["mlp"].error is None and rows["mlp"].params == 100 * 200 + 200 + 30_150 + 1_510


def test_models_command_prints_a_table(capsys):
    assert main(["models", "dataset=cifar100"]) == 0
    out = capsys.readouterr().out
    assert "cifar100" in out and "3x32x32, 100 classes" in out
    assert "275,396" in out and "10,492" in out
    assert all(name in out for name in model_names())


def test_models_command_takes_overrides(capsys):
    assert main(["models", "dataset=synthetic", "dataset.image_size=12", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["lenet"]["params"] is None and "16x16" in rows["lenet"]["error"]
    assert rows["lenet_sigmoid"]["params"] is not None
    assert rows["cnn2"]["input"] == [1, 12, 12]


def test_models_command_errors_are_one_paragraph(capsys):
    assert main(["models", "dataset=imagenet"]) == 2
    out = capsys.readouterr().out
    assert "error:" in out and "dataset=imagenet is not a dataset; datasets: cifar10" in out
    assert "Traceback" not in out
    assert main(["models", "dataset=mnist", "--tabel"]) == 2
    assert "--tabel" in capsys.readouterr().out


def test_models_json_from_the_console_script(cli, tmp_path):
    proc = cli("models", "dataset=mnist", "--json", cwd=tmp_path, check=True)
    rows = json.loads(proc.stdout)
    assert {r["model"] for r in rows} == set(model_names())
    by_name = {r["model"]: r for r in rows}
    assert by_name["lenet"]["params"] == 44_426 and by_name["mlp"]["params"] == 188_660
    assert all({"model", "params", "output_shape", "error"} <= set(r) for r in rows)
