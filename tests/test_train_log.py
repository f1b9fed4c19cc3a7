"""train.log is the story the run showed: how it was interrupted, how to continue, and where the
resumed run took up again, in the same file."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import stop_signals_as_in_a_terminal

RUN = ["dataset=synthetic", "dataset.train_size=2000", "dataset.test_size=64",
       "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false"]


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1"},
                            preexec_fn=stop_signals_as_in_a_terminal)


def stop_after_the_first_epoch(proc: subprocess.Popen, sig: int) -> str:
    """Everything the run printed, once `sig` came after its first epoch line."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("epoch 1/"):
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=120)
    return "".join(seen) + rest


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_an_interrupted_then_resumed_run_keeps_both_stories_in_one_log(tmp_path):
    run = tmp_path / "run"
    out = stop_after_the_first_epoch(start(tmp_path, "train", *RUN, "trainer.epochs=20",
                                           f"hydra.run.dir={run}"), signal.SIGINT)
    stopped = metrics_of(run)
    assert stopped["status"] == "interrupted", out
    k = stopped["epochs_run"]
    assert 1 <= k < 20, out
    log = (run / "train.log").read_text()
    assert "interrupted: the run directory" in log and "Continue with:" in log, log
    lines = out.splitlines()
    command = lines[next(i for i, line in enumerate(lines) if "Continue with:" in line) + 1]
    assert command.strip() in log  # the very command the user saw

    argv = shlex.split(command.strip())
    assert argv[:2] == ["cnnbench", "train"]
    resumed = subprocess.run([sys.executable, "-m", "cnnbench", *argv[1:]], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "COLUMNS": "120"})
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    said = f"resuming from epoch {k} of 20 (from {run / 'checkpoints' / 'last.pt'})"
    assert said in resumed.stdout, resumed.stdout
    log = (run / "train.log").read_text()
    assert log.index("Continue with:") < log.index(said) < log.index("epoch 20/20")
    assert metrics_of(run)["status"] == "completed"


@pytest.mark.parametrize("sig,why", [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")])
def test_a_run_stopped_by_a_signal_logs_the_line_it_showed(tmp_path, sig, why):
    run = tmp_path / "run"
    out = stop_after_the_first_epoch(start(tmp_path, "train", *RUN, "trainer.epochs=20",
                                           f"hydra.run.dir={run}"), sig)
    assert metrics_of(run)["status"] == "interrupted" and why in metrics_of(run)["reason"]
    shown = next(line for line in out.splitlines() if line.startswith("interrupted: "))
    assert shown in (run / "train.log").read_text()
