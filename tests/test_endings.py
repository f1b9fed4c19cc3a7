"""Every way a run can end leaves a final status, and the advice printed matches the disk.

Real `cnnbench` processes, real signals, real files: a signal in each phase of a run (data
loading, training, testing), SIGHUP, a crash after training, SIGTERM to `cnnbench eval`, two
processes on one run directory.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import stop_signals_as_in_a_terminal

from cnnbench.rundir import FINAL_STATUSES, LOCK_FILE

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false"]
# a data set that takes a few seconds to generate: a signal lands while the data loads
SLOW_DATA = ["dataset=synthetic", "dataset.channels=3", "dataset.image_size=32",
             "dataset.train_size=40000", "dataset.test_size=64", "model=mlp",
             "trainer.device=cpu", "trainer.progress=false"]
# a test phase that takes a few seconds: many shifted copies of a large test set
SLOW_TEST = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=8000",
             "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
             "evaluation.shifts=[1,2,3,4,5,6,7,8,9,10,11,12]", "trainer.epochs=1"]


def start(cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", **(env or {})},
                            preexec_fn=stop_signals_as_in_a_terminal)


def metrics_of(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def wait_for_phase(run_dir: Path, proc: subprocess.Popen, phase: str, timeout: float = 240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before phase {phase}:\n{proc.communicate()[0]}")
        if metrics_of(run_dir).get("phase") == phase:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run never reached phase {phase}")


def assert_final(run_dir: Path, status: str, ended_in: str | None = None) -> dict:
    metrics = metrics_of(run_dir)
    assert metrics["status"] == status, metrics
    assert metrics["status"] in FINAL_STATUSES
    if ended_in is not None:
        assert metrics["ended_in_phase"] == ended_in, metrics
    assert not (run_dir / LOCK_FILE).exists(), "the lock outlived its process"
    return metrics


def printed_command(out: str) -> str:
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Continue with:" in line)
    return lines[at + 1].strip()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_data_loads(tmp_path, sig, code):
    run = tmp_path / "run"
    proc = start(tmp_path, "train", *SLOW_DATA, f"hydra.run.dir={run}")
    wait_for_phase(run, proc, "data")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    assert_final(run, "interrupted", ended_in="data")
    assert not (run / "checkpoints" / "last.pt").exists()
    assert "nothing to resume" in out and "trainer.resume" not in out, out


def test_ctrl_c_in_the_test_phase_then_the_printed_command_finishes_it(tmp_path):
    run = tmp_path / "run"
    proc = start(tmp_path, "train", *SLOW_TEST, f"hydra.run.dir={run}")
    wait_for_phase(run, proc, "testing")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    metrics = assert_final(run, "interrupted", ended_in="testing")
    assert metrics["epochs_run"] == 1 and (run / "checkpoints" / "last.pt").is_file()
    command = printed_command(out)  # the advice, run exactly as printed
    assert command.startswith("cnnbench train trainer.resume=")
    argv = shlex.split(command)
    done = subprocess.run([sys.executable, "-m", "cnnbench", *argv[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = assert_final(run, "completed")
    assert metrics["epochs_run"] == 1 and "test/acc" in metrics


def test_sighup_ends_the_run_as_interrupted(tmp_path):
    run = tmp_path / "run"
    proc = start(tmp_path, "train", *SLOW_TEST[:-1], "trainer.epochs=50000",
                 f"hydra.run.dir={run}")
    wait_for_phase(run, proc, "training")
    proc.send_signal(signal.SIGHUP)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 129, out
    metrics = assert_final(run, "interrupted", ended_in="training")
    assert "SIGHUP" in metrics["reason"]
    assert (run / "checkpoints" / "last.pt").is_file()


CRASH_AFTER_TRAINING = """
import cnnbench.evaluation.evaluate as evaluate
def crash(*args, **kwargs):
    raise MemoryError("injected: the test phase ran out of memory")
evaluate.evaluate_test_set = crash
"""


def test_a_crash_after_training_leaves_failed(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_AFTER_TRAINING)
    run = tmp_path / "run"
    proc = start(tmp_path, "train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}",
                 env={"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    metrics = assert_final(run, "failed", ended_in="testing")
    assert "MemoryError" in metrics["reason"] and metrics["epochs_run"] == 1
    assert (run / "checkpoints" / "last.pt").is_file()


def test_sigterm_to_eval_leaves_interrupted(tmp_path, cli):
    run = tmp_path / "run"
    cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    out_dir = tmp_path / "eval"
    proc = start(tmp_path, "eval", f"checkpoint={run}", f"out={out_dir}",
                 "dataset.test_size=8000", "evaluation.shifts=[1,2,3,4,5,6,7,8,9,10,11,12]",
                 "trainer.device=cpu")
    wait_for_phase(out_dir, proc, "testing")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert_final(out_dir, "interrupted", ended_in="testing")


def test_two_processes_never_write_one_run(tmp_path, cli):
    run = tmp_path / "run"
    first = start(tmp_path, "train", *SLOW_TEST[:-1], "trainer.epochs=500",
                  f"hydra.run.dir={run}")
    try:
        wait_for_phase(run, first, "training")
        while not (run / "checkpoints" / "last.pt").exists():
            assert first.poll() is None
            time.sleep(0.05)
        before = (run / ".hydra" / "config.yaml").read_bytes()
        second = cli("train", *TINY, f"trainer.resume={run}", cwd=tmp_path)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "another cnnbench process" in second.stdout and "Traceback" not in second.stderr
        assert (run / ".hydra" / "config.yaml").read_bytes() == before
        assert first.poll() is None, "the first run was disturbed"
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert_final(run, "interrupted")


def test_a_stale_lock_does_not_block_a_resume(tmp_path, cli):
    run = tmp_path / "run"
    cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    done = cli("train", *TINY, "trainer.epochs=2", f"trainer.resume={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert assert_final(run, "completed")["epochs_run"] == 2


def test_a_new_run_never_writes_into_an_existing_run(tmp_path, cli):
    run = tmp_path / "run"
    cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}", cwd=tmp_path, check=True)
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    again = cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run" in again.stdout, again.stdout
    assert "trainer.resume=" in again.stdout and "Traceback" not in again.stderr
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files
