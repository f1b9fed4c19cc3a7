"""A validation split that leaves nothing to train on is refused in one paragraph, before any
training, instead of a run of zero training images that ends `completed`."""
from __future__ import annotations

import pytest

from cnnbench.data import load_dataset
from cnnbench.errors import UserError

TINY = ["dataset=synthetic", "dataset.test_size=8", "model=mlp", "trainer.epochs=1",
        "trainer.device=cpu", "trainer.progress=false", "evaluation.plots=false",
        "evaluation.table=false", "hydra.run.dir=run"]


@pytest.mark.parametrize("train_size,val_split,said", [
    (20, 0.99, "holds out 20 of the 20 training images for validation, which leaves none"),
    (1, 0.5, "the training set has 1 image: too few to hold one out"),
])
def test_a_validation_split_that_leaves_no_training_image_is_refused(tmp_path, cli, train_size,
                                                                      val_split, said):
    proc = cli("train", *TINY, f"dataset.train_size={train_size}",
               f"trainer.val_split={val_split}", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert said in out and "trainer.val_split=0" in out, out
    assert "Traceback" not in out
    assert not (tmp_path / "run" / "history.csv").exists(), "an epoch was trained"
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_largest_split_that_leaves_one_training_image_is_kept():
    data = load_dataset("synthetic", train_size=20, test_size=4).with_validation(0.95, seed=0)
    assert (len(data.train), len(data.val)) == (1, 19)


def test_cnnbench_data_refuses_the_same_split(tmp_path, cli):
    proc = cli("data", "dataset=synthetic", "dataset.train_size=20", "dataset.test_size=8",
               "trainer.val_split=0.99", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "leaves none to train on" in out, out
    assert "Traceback" not in out


def test_without_a_validation_split_nothing_is_held_out():
    data = load_dataset("synthetic", train_size=3, test_size=2).with_validation(0, seed=0)
    assert len(data.train) == 3 and data.val is None
    with pytest.raises(UserError, match="leaves none to train on"):
        load_dataset("synthetic", train_size=3, test_size=2).with_validation(0.9, seed=0)
