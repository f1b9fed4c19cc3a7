"""Never lose work, and say plainly what went wrong: signals, resume, divergence, bad input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import stop_signals_as_in_a_terminal

from cnnbench.errors import UserError
from cnnbench.run.checkpoint import load_checkpoint, save_checkpoint

# big enough that an epoch takes a moment on the CPU, so a signal lands mid-run
SLOW = ["dataset=synthetic", "dataset.train_size=6000", "dataset.test_size=256",
        "trainer.batch_size=64", "trainer.device=cpu"]
TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu"]


def only_run(tmp_path: Path) -> Path:
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def _ctrl_c_reaches_the_child() -> None:
    # A shell starts background jobs with SIGINT ignored, and children inherit that (as with
    # nohup); a user's Ctrl-C in a terminal always reaches the run, so the test starts it so.
    stop_signals_as_in_a_terminal()


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "120"},
                            preexec_fn=_ctrl_c_reaches_the_child)


def wait_for_epochs(tmp_path: Path, proc: subprocess.Popen, epochs: int, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        runs = list((tmp_path / "outputs" / "runs").glob("*/history.csv"))
        if runs and len(list(csv.DictReader(open(runs[0])))) >= epochs:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not reach the epoch in time")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_keeps_everything(tmp_path, sig, code):
    proc = start(tmp_path, *SLOW, "trainer.epochs=50")
    wait_for_epochs(tmp_path, proc, 1)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    run = only_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 1
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["epoch"] == metrics["epochs_run"]
    assert len(list(csv.DictReader(open(run / "history.csv")))) >= metrics["epochs_run"]
    assert list(run.glob("events.out.tfevents.*"))
    assert "trainer.resume" in out


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, cli):
    common = [*SLOW, "trainer.epochs=3", "scheduler=onecycle", "augmentation=affine",
              "trainer.progress=false"]
    straight = tmp_path / "straight"
    straight.mkdir()
    cli("train", *common, cwd=straight, check=True)
    expected = json.loads((only_run(straight) / "metrics.json").read_text())

    broken = tmp_path / "broken"
    broken.mkdir()
    proc = start(broken, *common)
    wait_for_epochs(broken, proc, 1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    run = only_run(broken)
    stopped_at = json.loads((run / "metrics.json").read_text())["epochs_run"]
    assert 1 <= stopped_at < 3, "the signal came too late to test a resume"
    cli("train", f"trainer.resume={run}", cwd=broken, check=True)
    assert only_run(broken) == run  # same directory, no new run
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == stopped_at
    assert resumed["test/acc"] == expected["test/acc"]
    assert resumed["test/loss"] == expected["test/loss"]
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]


def test_divergence_stops_with_advice(tmp_path, cli):
    proc = cli("train", *TINY, "trainer.epochs=3", "optimizer=sgd", "optimizer.lr=1e12",
               cwd=tmp_path)
    assert proc.returncode != 0
    assert "diverged" in proc.stdout and "learning rate" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    metrics = json.loads((only_run(tmp_path) / "metrics.json").read_text())
    assert metrics["status"] == "diverged"


def test_failing_sweep_job_does_not_stop_the_others(tmp_path, cli):
    proc = cli("train", "-m", *TINY, "trainer.epochs=1", "trainer.batch_size=0,64",
               cwd=tmp_path)
    assert proc.returncode != 0
    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    statuses = sorted(json.loads((job / "metrics.json").read_text())["status"]
                      for job in sweep.iterdir() if (job / "metrics.json").exists())
    assert statuses == ["completed", "failed"]
    assert "1 of 2 jobs did not complete" in proc.stdout


@pytest.mark.parametrize("args,expected", [
    (["model=resnet9000"], "model=resnet9000 is not a model; models: alexnet"),
    (["optimizer=sgd,rmsprop_x"], "optimizer=rmsprop_x is not an optimizer"),
    (["trainer.foo=1"], "trainer.foo"),
    (["trainer.epochs=ten"], "trainer.epochs='ten' is not valid"),
    (["optimizer.lr=0"], "optimizer.lr=0 is not valid"),
    (["optimizer.lr=-1"], "optimizer.lr=-1 is not valid"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 is not valid"),
    (["trainer.epochs=0"], "trainer.epochs=0 is not valid"),
    (["trainer.val_split=1.5"], "trainer.val_split=1.5 is not valid"),
    (["dataset=fashion_mnist", "dataset.root=nowhere", "dataset.download=false"],
     "nowhere/FashionMNIST/raw"),
    (["dataset.image_size=8"], "cannot take 1x8x8 images"),
    (["trainer.resume=missing/last.pt"], "no such file or directory"),
    (["hydra.run.dir=/proc/version/run"], "/proc/version is a file, not a folder"),
    (["trainer.label_smoothing=abc"], "trainer.label_smoothing='abc' is not valid: it must be a number"),
    (["trainer.early_stopping=5"], "trainer.early_stopping=5 is not valid"),
    ([f"trainer.seed={2**64}"], f"trainer.seed={2**64} is not valid"),
    (["trainer.epoch=3"], "did you mean trainer.epochs?"),
    (["trainer.early_stopping.patienc=3"], "did you mean trainer.early_stopping.patience?"),
    (["~trainer.epochs"], "trainer.epochs is missing from the composed config"),
    (["trainer.seed=${oc.env:CNNBENCH_TEST_UNSET}"], "Environment variable 'CNNBENCH_TEST_UNSET' not found"),
    (["evaluation.shifts=abc"], "evaluation.shifts=['abc'] is not valid"),
    (["trainer.epochs=[1,"], "'trainer.epochs=[1,' is not a valid override"),
    (["model="], "model= names no option"),
    (["model=mlp,lenet"], "lists several values, which makes a sweep: add -m"),
    (["dataset.train_size=-5"], "dataset.train_size=-5 is not valid for dataset=synthetic"),
])
def test_bad_input_is_one_clear_paragraph(tmp_path, cli, args, expected):
    base = [] if "dataset=fashion_mnist" in args else TINY
    proc = cli("train", *base, "trainer.epochs=1", *args, cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expected in " ".join(text.split()), text
    assert "Traceback" not in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu(tmp_path, cli):
    proc = cli("train", *TINY, "trainer.epochs=1", "trainer.device=cuda", cwd=tmp_path)
    assert proc.returncode != 0 and "sees no CUDA GPU" in " ".join(proc.stdout.split())


def test_resume_rejects_foreign_files(tmp_path, cli):
    cli("train", *TINY, "trainer.epochs=1", cwd=tmp_path, check=True)
    run = only_run(tmp_path)
    not_a_checkpoint = run / "checkpoints" / "notes.pt"
    not_a_checkpoint.write_text("hello")
    proc = cli("train", f"trainer.resume={not_a_checkpoint}", cwd=tmp_path)
    assert proc.returncode != 0 and "not a cnnbench checkpoint" in " ".join(proc.stdout.split())
    proc = cli("train", f"trainer.resume={run}", "model=mlp", cwd=tmp_path)
    text = " ".join(proc.stdout.split())
    assert proc.returncode != 0 and "cannot take model=mlp (the run has 'lenet')" in text
    assert "Traceback" not in proc.stdout + proc.stderr


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_checkpoints_load_safely(tmp_path):
    path = tmp_path / "ok.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 3, "config": "a: 1"})
    assert load_checkpoint(path)["epoch"] == 3
    assert not list(tmp_path.glob(".ok.pt.*"))  # no temporary file left behind
    evil = tmp_path / "evil.pt"
    torch.save({"format": "cnnbench-checkpoint-v1", "payload": Evil()}, evil)
    with pytest.raises(UserError, match="not a cnnbench checkpoint"):
        load_checkpoint(evil)


def test_deterministic_runs_match_and_record_provenance(tmp_path, cli):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cli("train", *TINY, "trainer.epochs=2", "trainer.deterministic=true",
            "augmentation=flip_crop", cwd=tmp_path / name, check=True)
    a, b = (json.loads((only_run(tmp_path / n) / "metrics.json").read_text()) for n in "ab")
    assert a["test/acc"] == b["test/acc"] and a["test/loss"] == b["test/loss"]
    assert a["seed"] == 42 and a["deterministic"] is True
    assert {"torch", "torchvision", "hydra", "python", "cnnbench"} <= set(a["versions"])
    assert "trainer.deterministic=true" in a["command"] and a["device"] == "cpu"
