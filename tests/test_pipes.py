"""A closed output ends what a command shows, never the command: `cnnbench ... | head -1`.

Real pipes: the reader takes a line (or nothing) and goes away; the command must finish its
work, exit with its own code and print no traceback (Python's "Exception ignored ...
BrokenPipeError" at exit included)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import trained_run, write_pictures

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=64",
        "trainer.batch_size=32", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory, [*TINY, "trainer.epochs=1", "hydra.run.dir=run"])


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "80", "PYTHONUNBUFFERED": "1"})


def head(proc: subprocess.Popen, lines: int) -> tuple[list[str], str]:
    """`| head -N`: read `lines` lines (0: none at all), close the pipe, wait for the end."""
    read = [proc.stdout.readline() for _ in range(lines)]
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=300)
    return read, stderr


def assert_quiet_end(stderr: str) -> None:
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr


@pytest.mark.parametrize("lines", [0, 1])
def test_a_run_whose_reader_goes_away_trains_on_and_ends_completed(tmp_path, lines):
    out = tmp_path / "run"
    proc = start(tmp_path, "train", *TINY, "dataset.train_size=2000", "trainer.epochs=4",
                 f"hydra.run.dir={out}")
    read, stderr = head(proc, lines)
    assert proc.returncode == 0, stderr
    assert_quiet_end(stderr)
    assert all(line.startswith("cnnbench lenet on synthetic") for line in read)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 4, metrics
    assert "test/acc" in metrics and (out / "checkpoints" / "last.pt").is_file()
    log = (out / "train.log").read_text()
    assert "epoch 4/4" in log and "run directory:" in log  # the log is whole


def test_a_sweep_whose_reader_goes_away_completes_every_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = start(tmp_path, "train", "-m", *TINY, "trainer.epochs=1", "model=mlp,lenet",
                 f"hydra.sweep.dir={sweep}")
    _, stderr = head(proc, 1)
    assert proc.returncode == 0, stderr
    assert_quiet_end(stderr)
    statuses = [json.loads(p.read_text())["status"] for p in sweep.glob("*/metrics.json")]
    assert statuses == ["completed", "completed"]


def test_a_failing_run_keeps_its_own_exit_code_when_its_reader_goes_away(tmp_path):
    proc = start(tmp_path, "train", *TINY, "model=nosuch")
    _, stderr = head(proc, 0)
    assert proc.returncode == 2, stderr
    assert_quiet_end(stderr)


@pytest.mark.parametrize("command", [
    ["--help"], ["train", "--help"], ["models", "dataset=mnist"], ["data", "dataset=synthetic"],
    ["compare", "{run}", "out={tmp}/compared"], ["eval", "checkpoint={run}", "out={tmp}/eval"],
    ["predict", "checkpoint={run}", "inputs={tmp}/pictures", "out={tmp}/predicted"],
    ["export", "checkpoint={run}", "format=torchscript", "out={tmp}/model.pt"],
], ids=lambda c: " ".join(c[:1]) if c[0] != "train" else "train --help")
@pytest.mark.parametrize("lines", [0, 1])
def test_every_command_piped_into_head_ends_without_a_traceback(tmp_path, run, command, lines):
    write_pictures(tmp_path / "pictures")
    args = [a.format(run=run, tmp=tmp_path) for a in command]
    proc = start(tmp_path, *args)
    _, stderr = head(proc, lines)
    assert proc.returncode == 0, stderr
    assert_quiet_end(stderr)
