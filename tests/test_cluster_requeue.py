"""Sweeps on a cluster survive preemption and time limits: through submitit's local executor
(`hydra/launcher=slurm_local`, the Slurm launcher's code path on this machine), a job that gets
the scheduler's signal mid-run (SIGUSR2: preempted, or its time limit is near) saves, is
requeued and resumes from its own last.pt, and ends as an uninterrupted run of it ends; the
sweep's manifest and summary count it as one job.

The signal comes either from the test, as Slurm sends it when it preempts a job, or from the
local executor's own time limit (90 s, signalled 30 s before: long enough for a busy machine to
start the job and finish its first epoch, where each job then waits for the signal)."""
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

from cnnbench.sweep.manifest import read_manifest

TINY = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "model=mlp", "optimizer.lr=0.0002", "trainer.epochs=6"]
# a time limit the jobs never reach: the signal comes from the test, as Slurm sends it
CLUSTER = ["-m", "hydra/launcher=slurm_local", "hydra.launcher.timeout_min=5",
           "hydra.launcher.max_num_timeout=3"]
# a time limit the jobs reach while they wait in their second epoch: the executor signals them
TIME_LIMIT = ["-m", "hydra/launcher=slurm_local", "hydra.launcher.timeout_min=1.5",
              "hydra.launcher.signal_delay_s=30", "hydra.launcher.max_num_timeout=3"]

# A sitecustomize.py for the jobs: a job's first attempt trains one epoch, then, in its second,
# writes its pid to <FIRST_ATTEMPTS>/<job id>.pid and waits (up to two minutes) for the signal
# that makes it save and be requeued; once requeued, the job runs at full speed.
FIRST_ATTEMPT_WAITS = """
import os
import time
import cnnbench.engine.epoch as epoch
real = epoch.train_one_epoch
calls = []
def waits_in_its_second_epoch(*args, **kwargs):
    mark = os.path.join(os.environ["FIRST_ATTEMPTS"], os.environ["SUBMITIT_LOCAL_JOB_ID"])
    if not calls:
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL))
            calls.append("first attempt")
        except FileExistsError:
            calls.append("requeued")
    calls.append("epoch")
    if calls[0] == "first attempt" and len(calls) > 2:
        with open(mark + ".pid", "w") as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return real(*args, **kwargs)
epoch.train_one_epoch = waits_in_its_second_epoch
"""


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def losses(run: Path) -> list[float]:
    """Each epoch's training and validation loss, in order."""
    with open(run / "history.csv", newline="") as f:
        return [float(row[key]) for row in csv.DictReader(f) for key in ("train/loss", "val/loss")]


def start(cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *args], cwd=cwd,
                            env={**os.environ, "COLUMNS": "120", **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def waiting_jobs(hook: Path, n: int, sweep: subprocess.Popen) -> list[int]:
    """The pids of the `n` jobs once each waits in its second epoch."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert sweep.poll() is None, sweep.communicate()[0]
        files = sorted(hook.glob("*.pid"))
        if len(files) == n and all(f.read_text() for f in files):
            return [int(f.read_text()) for f in files]
        time.sleep(0.1)
    sweep.kill()
    raise AssertionError(f"the jobs did not reach their second epoch\n{sweep.communicate()[0]}")


@pytest.fixture
def hook(tmp_path: Path) -> Path:
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(FIRST_ATTEMPT_WAITS)
    return folder


@pytest.mark.parametrize("signalled_by", ["the cluster", "its time limit"])
def test_a_job_signalled_mid_run_is_requeued_and_ends_as_an_uninterrupted_run(tmp_path, hook,
                                                                             signalled_by):
    sweep_dir = tmp_path / "sweep"
    reference = start(tmp_path, *TINY, "trainer.seed=1", "hydra.run.dir=reference")  # meanwhile
    launcher = CLUSTER if signalled_by == "the cluster" else TIME_LIMIT
    sweep = start(tmp_path, *launcher, *TINY, "trainer.seed=1,2", f"hydra.sweep.dir={sweep_dir}",
                  env={"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
                       "FIRST_ATTEMPTS": str(hook)})
    waiting = waiting_jobs(hook, 2, sweep)
    if signalled_by == "the cluster":  # as Slurm signals a job it preempts
        for pid in waiting:
            os.kill(pid, signal.SIGUSR2)
    out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out
    assert f"sweep: 2 jobs in {sweep_dir}: 2 completed" in " ".join(out.split()), out
    manifest = read_manifest(sweep_dir)
    assert manifest is not None and len(manifest.jobs) == 2, out  # a requeued job is one job
    assert [(job.action, job.status) for job in manifest.current()] == [("new", "completed")] * 2
    jobs = [manifest.path_of(job) for job in manifest.current()]
    assert sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0] != ".") == jobs
    submitted = [d for d in (sweep_dir / ".submitit").iterdir() if d.name.isdigit()]
    assert len(submitted) == 2  # each job submitted once, and requeued once
    for folder in submitted:
        logs = "".join(p.read_text() for p in folder.glob("*_log.*"))
        assert "Requeued job" in logs and "Job completed successfully" in logs, logs
    for job in jobs:  # each was stopped in its second epoch: it resumed from the first
        assert metrics(job)["resumed_from_epoch"] == 1
        assert metrics(job)["status"] == "completed" and metrics(job)["epochs_run"] == 6
        assert "resuming from epoch 1 of 6" in (job / "train.log").read_text()
    assert reference.wait(timeout=120) == 0, reference.communicate()[0]
    expected, job = tmp_path / "reference", jobs[0]  # trainer.seed=1, as the reference
    assert metrics(job)["test/loss"] == pytest.approx(metrics(expected)["test/loss"], rel=1e-6)
    assert metrics(job)["test/acc"] == metrics(expected)["test/acc"]
    assert losses(job) == pytest.approx(losses(expected), rel=1e-6)


def test_a_slurm_sweep_off_a_cluster_is_refused_in_one_paragraph(tmp_path, cli):
    proc = cli("train", "-m", "hydra/launcher=slurm", *TINY, "trainer.seed=1,2", cwd=tmp_path,
               env={"PATH": str(Path(sys.executable).parent)})  # no srun, as off a cluster
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert ("hydra/launcher=slurm submits the sweep's jobs to a Slurm cluster, and this machine "
            "is not part of one") in " ".join(proc.stderr.split() + proc.stdout.split())
    assert not list(tmp_path.glob("outputs/multirun/*/*/metrics.json"))  # no job was planned
