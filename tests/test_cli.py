"""The `cnnbench` command as a user runs it: a subprocess, files on disk, exit codes."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.epochs=2", "trainer.batch_size=64"]


def check_run_dir(run: Path) -> dict:
    """Every output file of a run exists and parses; returns metrics.json."""
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert "model" in config and "trainer" in config
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test/loss", "test/acc", "params", "train_seconds", "images_per_s", "device",
                "amp", "epochs_run", "status"):
        assert key in metrics, key
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert len(rows) == metrics["epochs_run"]
    assert {"epoch", "train/loss", "train/acc", "val/loss", "val/acc", "lr"} <= set(rows[0])
    assert (run / "checkpoints" / "best.pt").stat().st_size > 0
    assert (run / "checkpoints" / "last.pt").stat().st_size > 0
    events = list(run.glob("events.out.tfevents.*"))
    assert events

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "images_per_s",
            "epoch_seconds"} <= tags
    assert len(acc.Scalars("train/loss")) == metrics["epochs_run"]
    steps = [e.step for e in acc.Scalars("train/loss_step")]  # within epochs, by global step
    assert len(steps) >= metrics["epochs_run"] and steps == sorted(set(steps))
    return metrics


def test_help_lists_commands_and_groups(cli, tmp_path):
    out = cli("--help", cwd=tmp_path, check=True).stdout
    for command in ("train", "models", "eval", "compare", "predict", "export"):
        assert f"  {command} " in out
    for group in ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer"):
        assert group in out
    assert "fashion_mnist" in out and "onecycle" in out and "adadelta" in out


def test_train_help_is_hydras(cli, tmp_path):
    out = cli("train", "--help", cwd=tmp_path, check=True).stdout
    assert out.startswith("cnnbench train")
    groups = dict(line.split(": ", 1) for line in out.splitlines()
                  if line.split(": ")[0] in ("model", "optimizer", "dataset") and ": " in line)
    assert {"lenet", "mlp"} <= set(groups["model"].split(", "))
    assert "adadelta" in groups["optimizer"] and "synthetic" in groups["dataset"]
    assert "trainer:" in out and "batch_size: 128" in out


def test_cfg_job_prints_composed_config(cli, tmp_path):
    out = cli("train", "--cfg", "job", "model=mlp", "optimizer.lr=0.5", cwd=tmp_path,
              check=True).stdout
    cfg = yaml.safe_load(out)
    assert cfg["optimizer"]["lr"] == 0.5 and cfg["model"]["_target_"].endswith("MLP")
    assert not (tmp_path / "outputs").exists()


def test_single_run_writes_every_output(cli, tmp_path):
    proc = cli("train", *TINY, cwd=tmp_path, check=True)
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1
    metrics = check_run_dir(runs[0])
    assert metrics["status"] == "completed" and metrics["device"] == "cpu"
    assert "test accuracy" in proc.stdout


def test_two_runs_never_share_a_directory(cli, tmp_path):
    procs = [subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *TINY,
                               "trainer.epochs=1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert len(list((tmp_path / "outputs" / "runs").iterdir())) == 2


def test_multirun_two_jobs(cli, tmp_path):
    cli("train", "-m", *TINY, "model=mlp,lenet", cwd=tmp_path, check=True)
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if (p / "metrics.json").exists())
    assert len(jobs) == 2
    models = {check_run_dir(job)["model"] for job in jobs}
    assert models == {"mlp", "lenet"}


def test_unknown_command_and_bad_value_are_one_paragraph(cli, tmp_path):
    proc = cli("fly", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown command" in proc.stdout
    proc = cli("train", *TINY, "trainer.batch_size=0", cwd=tmp_path)
    assert proc.returncode != 0
    assert "trainer.batch_size" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_wheel_ships_configs_and_mnist(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("cnnbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cnnbench/conf/train.yaml" in names
    assert "cnnbench/conf/model/lenet.yaml" in names
    assert "cnnbench/data/embedded_mnist/train-images-idx3-ubyte.gz" in names


@pytest.mark.slow
def test_lenet_on_real_mnist_one_epoch(cli, tmp_path, mnist_root):
    """The real thing: LeNet-5, MNIST from a copy of the archives, 1 epoch on the CPU."""
    cli("train", "model=lenet", "dataset=mnist", f"dataset.root={mnist_root}",
        "trainer.epochs=1", "trainer.device=cpu", cwd=tmp_path, check=True)
    run = next((tmp_path / "outputs" / "runs").iterdir())
    metrics = check_run_dir(run)
    assert metrics["test/acc"] >= 0.95
    assert metrics["train_size"] == 54000 and metrics["val_size"] == 6000
