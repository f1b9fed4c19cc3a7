"""A dataset reads only its own dataset.* keys: a key of another dataset (`+dataset.train_size`
on MNIST, `+dataset.path` on synthetic data) is refused in one paragraph by train and lr-find,
the commands that take `+dataset.*` (eval and data refuse any `+`), before anything is written,
instead of being silently ignored."""
from __future__ import annotations

import pytest
from conftest import run_cli, write_idx_set
from test_advice_runs import SYNTHETIC, TINY, error_line

from cnnbench.cli import smaller_data
from cnnbench.data.sources import LOADERS, check_options, load_dataset
from cnnbench.errors import UserError

MNIST = ["dataset=mnist", "dataset.root=mn", "model=mlp", "trainer.batch_size=32", *TINY]


@pytest.fixture
def mnist_files(tmp_path):
    write_idx_set(tmp_path / "mn" / "MNIST" / "raw")
    return tmp_path


@pytest.mark.parametrize("command", ["train", "lr-find"])
@pytest.mark.parametrize("key,owner", [("+dataset.train_size=100", "synthetic"),
                                       ("+dataset.path=pictures", "imagefolder"),
                                       ("+dataset.seed=3", "synthetic")])
def test_a_key_of_another_dataset_is_refused_on_mnist_before_anything_is_written(
        mnist_files, command, key, owner):
    out = "hydra.run.dir=run" if command == "train" else "out=run"
    proc = run_cli(command, *MNIST, key, out, cwd=mnist_files)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    name = key.lstrip("+").partition("=")[0]
    assert f"dataset=mnist does not read {name} ({name} is an option of dataset={owner})" in line
    assert "dataset.download, dataset.image_size, dataset.root" in line, line
    assert not (mnist_files / "run").exists()


def test_the_same_run_without_the_foreign_key_trains(mnist_files):
    proc = run_cli("train", *MNIST, "hydra.run.dir=run", cwd=mnist_files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_synthetic_data_takes_its_own_seed_and_refuses_the_key_of_an_image_folder(tmp_path):
    ok = run_cli("train", *SYNTHETIC, "model=mlp", "+dataset.seed=3", "hydra.run.dir=a",
                 cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    proc = run_cli("train", *SYNTHETIC, "model=mlp", "+dataset.path=pictures",
                   "hydra.run.dir=b", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    assert "dataset=synthetic does not read dataset.path (dataset.path is an option of " \
           "dataset=imagefolder)" in line, line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_dataset_accepts_the_keys_of_its_shipped_config(name):
    import yaml

    from cnnbench.settings.config_files import config_dir

    keys = yaml.safe_load((config_dir() / "dataset" / f"{name}.yaml").read_text())
    check_options(name, {k: v for k, v in keys.items() if k != "name"})


def test_a_stored_config_from_an_earlier_version_loads_without_the_key_its_run_ignored():
    with pytest.raises(UserError, match="does not read dataset.path"):
        load_dataset("synthetic", train_size=8, test_size=4, path="x")
    data = load_dataset("synthetic", strict=False, train_size=8, test_size=4, path="x")
    assert len(data.train) == 8 and len(data.test) == 4


@pytest.mark.parametrize("args,command,expected", [
    (["dataset=mnist"], "train", "use smaller images (dataset.image_size)"),
    (["dataset=mnist"], "data", "free memory for it"),
    (["dataset=imagefolder"], "data", "use smaller images (dataset.image_size)"),
    (["dataset=synthetic"], "data", "dataset.train_size"),
])
def test_the_out_of_memory_advice_names_only_what_shrinks_the_data_of_that_command(
        args, command, expected):
    assert expected in smaller_data(args, command)
    if command == "data" and args == ["dataset=mnist"]:
        assert "dataset.image_size" not in smaller_data(args, command)
