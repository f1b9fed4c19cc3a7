"""A sweep run again in its directory (`hydra.sweep.dir=<the sweep>`, same overrides) skips the
jobs that completed, resumes the interrupted ones from their last.pt and runs the others: real
`cnnbench train -m` processes, stopped with Ctrl-C mid-way and continued with the command they
print, with the default launcher and with hydra/launcher=parallel."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import CRASH_WHILE_MARKED, stop_signals_as_in_a_terminal

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "model=mlp"]
SLOWER = [*TINY, "dataset.train_size=2000", "dataset.test_size=64", "trainer.batch_size=64"]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def start(cwd: Path, *args: str) -> subprocess.Popen:
    """The sweep in a process group of its own, Ctrl-C reaching it as in a terminal."""
    return subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
                            preexec_fn=stop_signals_as_in_a_terminal,
                            start_new_session=True)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A printed command, run exactly as a user pastes it."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def jobs_of(sweep: Path) -> dict[str, dict]:
    """{job directory name: its metrics.json} (a file being replaced reads as {})."""
    found = {}
    for run in sorted(p for p in sweep.glob("*") if p.is_dir()):
        try:
            found[run.name] = json.loads((run / "metrics.json").read_text())
        except (OSError, ValueError):
            found[run.name] = {}
    return found


def one_sweep(cwd: Path) -> Path:
    sweeps = list((cwd / "outputs" / "multirun").glob("*"))
    return sweeps[0] if len(sweeps) == 1 else None


def snapshot(run: Path) -> dict[str, tuple[str, int]]:
    """Every file under `run` with the hash of its bytes and its modification time."""
    return {str(p.relative_to(run)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                      p.stat().st_mtime_ns)
            for p in sorted(run.rglob("*")) if p.is_file()}


def epochs_in_history(run: Path) -> list[int]:
    return [int(row["epoch"]) for row in csv.DictReader(open(run / "history.csv"))]


def line_after(out: str, marker: str) -> str:
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if marker in line)
    return lines[at + 1].strip()


def stop_mid_way(cwd: Path, proc: subprocess.Popen, long_epochs: int) -> str:
    """Ctrl-C once a job has completed and a long job has trained an epoch (not all of them)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        sweep = one_sweep(cwd)
        jobs = jobs_of(sweep).values() if sweep else []
        if (any(m.get("status") == "completed" for m in jobs)
                and any(m.get("status") == "running" and m.get("epochs") == long_epochs
                        and (m.get("epochs_run") or 0) >= 1 for m in jobs)):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    return out


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]],
                         ids=["default-launcher", "parallel-launcher"])
def test_a_sweep_stopped_with_ctrl_c_and_run_again_completes_every_job_once(tmp_path, launcher):
    seeds = "trainer.seed=1,2,3" if launcher else "trainer.seed=1,2"
    proc = start(tmp_path, "-m", *launcher, *SLOWER, "trainer.epochs=1,8", seeds)
    out = stop_mid_way(tmp_path, proc, long_epochs=8)
    sweep, n_jobs = one_sweep(tmp_path), 6 if launcher else 4
    before = jobs_of(sweep)
    completed = [name for name, m in before.items() if m["status"] == "completed"]
    resumable = {name: m["epochs_run"] for name, m in before.items()
                 if m["status"] == "interrupted" and (m.get("epochs_run") or 0) >= 1}
    assert completed and resumable, out
    assert set(m["status"] for m in before.values()) <= {"completed", "interrupted",
                                                          "not started"}, before
    summary = " ".join(out.split())
    assert f"sweep: {n_jobs} jobs in {sweep.relative_to(tmp_path)}" in summary, out
    untouched = {name: snapshot(sweep / name) for name in completed}

    command = line_after(out, "Continue the sweep with the command below")
    assert command.startswith("cnnbench train -m ") and "hydra.sweep.dir=" in command
    again = shell(command, tmp_path)
    assert again.returncode == 0, again.stdout
    after = jobs_of(sweep)
    assert len(after) == n_jobs and all(m["status"] == "completed" for m in after.values())
    for name in completed:
        assert snapshot(sweep / name) == untouched[name], name
    for name, done in resumable.items():
        assert after[name]["resumed_from_epoch"] == done
        assert epochs_in_history(sweep / name) == list(range(1, after[name]["epochs"] + 1))
    for name in set(after) - set(completed) - set(resumable):
        assert after[name]["resumed_from_epoch"] is None
        assert epochs_in_history(sweep / name) == list(range(1, after[name]["epochs"] + 1))
    text = " ".join(again.stdout.split())
    n = len(completed)
    assert f"skipped {n} completed job{'s' if n > 1 else ''}" in text, again.stdout
    assert f"resumed {len(resumable)} job" in text and f"sweep: {n_jobs} jobs in" in text


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]],
                         ids=["default-launcher", "parallel-launcher"])
def test_a_value_added_to_a_sweep_list_runs_only_the_new_job(tmp_path, cli, launcher):
    first = cli("train", "-m", *launcher, *TINY, "trainer.epochs=1", "trainer.seed=1,2",
                "hydra.sweep.dir=sw", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    sweep = tmp_path / "sw"
    old = {run.name: snapshot(run) for run in sweep.iterdir() if run.is_dir()}
    again = cli("train", "-m", *launcher, *TINY, "trainer.epochs=1", "trainer.seed=0,1,2",
                "hydra.sweep.dir=sw", cwd=tmp_path)  # the new value comes first in the list
    assert again.returncode == 0, again.stdout + again.stderr
    text = " ".join(again.stdout.split())
    assert "skipped 2 completed jobs; 1 new job" in text
    assert "sweep: 3 jobs in sw: 3 completed" in text
    for name, files in old.items():
        assert snapshot(sweep / name) == files
    (new,) = set(jobs_of(sweep)) - set(old)
    assert new.startswith("2_") and new.endswith("trainer.seed=0")  # numbered after the others
    assert jobs_of(sweep)[new]["status"] == "completed"




def test_a_failed_job_is_resumed_by_the_command_the_sweep_prints(tmp_path):
    hook, marker = tmp_path / "hook", tmp_path / "crash"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_WHILE_MARKED)
    marker.touch()
    env = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
           "CRASH_MARKER": str(marker)}
    ENV.update(env)
    try:
        first = shell("cnnbench train -m " + " ".join([*TINY, "trainer.epochs=2",
                                                       "trainer.seed=1,2"]), tmp_path)
        assert first.returncode == 1, first.stdout
        assert "1 of 2 jobs did not complete" in first.stdout
        command = line_after(first.stdout, "Run the sweep again for them")
        marker.unlink()  # whatever failed is fixed now
        again = shell(command, tmp_path)
    finally:
        for key in env:
            ENV.pop(key)
    assert again.returncode == 0, again.stdout
    text = " ".join(again.stdout.split())
    assert "skipped 1 completed job; resumed 1 job from its last.pt (1 failed)" in text
    sweep = one_sweep(tmp_path)
    (failed,) = [run for run in sweep.iterdir() if run.name.endswith("trainer.seed=2")]
    metrics = jobs_of(sweep)[failed.name]
    assert metrics["status"] == "completed" and metrics["resumed_from_epoch"] == 2
    assert epochs_in_history(failed) == [1, 2]


def test_a_diverged_job_runs_again_from_the_start(tmp_path, cli):
    args = ["train", "-m", *TINY, "trainer.epochs=2", "optimizer=sgd", "optimizer.lr=1e12,0.01",
            "hydra.sweep.dir=sw"]
    assert cli(*args, cwd=tmp_path).returncode == 1
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 1  # the same settings diverge again
    assert "Run the sweep again" not in again.stdout  # so the end suggests no rerun
    assert "skipped 1 completed job; ran 1 job again from the start (1 diverged)" in \
        " ".join(again.stdout.split())
    (run,) = (tmp_path / "sw").glob("0_*")
    assert json.loads((run / ".earlier" / "1" / "metrics.json").read_text())["status"] == \
        "diverged"
    assert json.loads((run / "metrics.json").read_text())["status"] == "diverged"


def test_two_processes_never_run_one_sweep(tmp_path, cli):
    sweep = tmp_path / "sw"
    sweep.mkdir()
    (sweep / ".cnnbench.lock").write_text(json.dumps({"pid": os.getpid(),
                                                      "host": socket.gethostname()}))
    proc = cli("train", "-m", *TINY, "trainer.epochs=1", "trainer.seed=1,2",
               "hydra.sweep.dir=sw", cwd=tmp_path)
    assert proc.returncode == 2 and "being written by another cnnbench process" in proc.stdout
    assert sorted(p.name for p in sweep.iterdir()) == [".cnnbench.lock"]
