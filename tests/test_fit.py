"""Tiny CPU fits on the synthetic dataset: the loop learns, stops early, steps schedules right."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from cnnbench.run.checkpoint import load_checkpoint
from cnnbench.run.lifecycle import TrainingRun

FAST = ["dataset=synthetic", "dataset.train_size=512", "dataset.test_size=256",
        "trainer.batch_size=64", "trainer.progress=false", "trainer.device=cpu"]


def fit(compose, tmp_path, *overrides):
    cfg = compose([*FAST, *overrides])
    choices = {"model": "lenet", "dataset": "synthetic", "optimizer": "adam",
               "scheduler": "none", "augmentation": "none"}
    return TrainingRun(cfg, tmp_path, choices).execute()


def test_tiny_fit_learns_and_writes_everything(compose, tmp_path):
    # a constant lr: cosine decay (the default) spends most of 3 tiny epochs at low rates
    metrics = fit(compose, tmp_path, "trainer.epochs=3", "scheduler=none")
    assert metrics["status"] == "completed"
    assert metrics["test/acc"] > 0.5  # chance is 0.1
    assert metrics["epochs_run"] == 3 and metrics["params"] == 44426
    assert json.loads((tmp_path / "metrics.json").read_text())["test/acc"] == metrics["test/acc"]
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])
    for name in ("best.pt", "last.pt"):
        ckpt = load_checkpoint(tmp_path / "checkpoints" / name)
        assert {"model", "optimizer", "scheduler", "scaler", "epoch", "config"} <= set(ckpt)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 3
    assert any(tmp_path.glob("events.out.tfevents.*"))


def test_early_stopping_stops_and_restores_best(compose, tmp_path):
    # an absurd learning rate for SGD without momentum makes validation loss stop improving
    metrics = fit(compose, tmp_path, "trainer.epochs=30", "optimizer=sgd", "optimizer.lr=0.5",
                  "optimizer.momentum=0.0", "trainer.early_stopping.patience=2",
                  "trainer.early_stopping.monitor=val/acc")
    assert metrics["stopped_early"] is True
    assert metrics["epochs_run"] == metrics["best_epoch"] + 2
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == metrics["best_epoch"]


@pytest.mark.parametrize("scheduler", ["plateau", "cosine", "onecycle"])
def test_schedulers_change_the_learning_rate(compose, tmp_path, scheduler):
    extra = ["scheduler.patience=0"] if scheduler == "plateau" else []
    fit(compose, tmp_path, "trainer.epochs=3", f"scheduler={scheduler}", *extra)
    lrs = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "history.csv"))]
    assert len(lrs) == 3
    if scheduler == "onecycle":
        assert lrs[0] < lrs[1]  # warm-up, then anneal
    else:
        assert lrs[-1] <= lrs[0]
    if scheduler == "cosine":
        assert lrs[-1] < lrs[0]


def test_onecycle_is_stepped_per_batch_to_the_end(compose, tmp_path):
    fit(compose, tmp_path, "trainer.epochs=2", "scheduler=onecycle")
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["scheduler"]
    assert state["last_epoch"] == state["total_steps"]  # 2 epochs x 8 batches, every one


def test_seeded_runs_are_identical(compose, tmp_path):
    a = fit(compose, tmp_path / "a", "trainer.epochs=2", "augmentation=affine")
    b = fit(compose, tmp_path / "b", "trainer.epochs=2", "augmentation=affine")
    assert a["test/acc"] == b["test/acc"] and a["test/loss"] == b["test/loss"]


def test_mlp_and_adadelta_and_flip_crop(compose, tmp_path):
    metrics = fit(compose, tmp_path, "model=mlp", "optimizer=adadelta", "augmentation=flip_crop",
                  "trainer.epochs=2", "trainer.val_split=0")
    assert metrics["status"] == "completed" and metrics["val_size"] == 0
    assert metrics["params"] == 28 * 28 * 200 + 200 + 200 * 150 + 150 + 150 * 10 + 10


def test_bf16_autocast_on_cpu(compose, tmp_path):
    metrics = fit(compose, tmp_path, "trainer.epochs=1", "trainer.amp=bf16")
    assert metrics["amp"] == "bf16" and metrics["status"] == "completed"
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))


def test_a_resumed_run_keeps_its_best_validation_accuracy(compose, tmp_path, monkeypatch):
    import cnnbench.engine.loop as train_module

    real, accuracies = train_module.evaluate, [0.5, 0.7, 0.3]
    monkeypatch.setattr(train_module, "evaluate",
                        lambda *a, **k: {**real(*a, **k), "acc": accuracies.pop(0)})
    fit(compose, tmp_path, "trainer.epochs=2")
    last = tmp_path / "checkpoints" / "last.pt"
    metrics = fit(compose, tmp_path, "trainer.epochs=3", f"trainer.resume={last}")
    assert metrics["epochs_run"] == 3 and metrics["best_val_acc"] == 0.7
