"""A sweep that hydra.launcher.fail_fast=true stopped at a failed job ends as that job would have
ended alone: the job records its ending's exit code (endings.py) with its final status, the
sweep's manifest names the job that stopped it, and the sweep's exit code is that job's (a
mistake 2, a full disk 2, out of memory 1, a job process killed with SIGKILL 137). A sweep that
ran all its jobs has no one ending: 1 when any did not complete."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from cnnbench import rundir
from cnnbench.endings import exit_code_of_process, recorded_exit_code, sweep_exit_code
from cnnbench.sweep.manifest import read_manifest

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "model=mlp", "trainer.epochs=1"]

# A sitecustomize.py for the sweep: the job whose directory name holds FAILING_JOB meets the
# fault FAULT names as its training starts (inside the run, which records how it ended).
FAULT_IN_ONE_JOB = """
import errno
import os
import signal
from cnnbench.run.lifecycle import TrainingRun
real_train = TrainingRun.train
def faulty(self, parts):
    if os.environ["FAILING_JOB"] in str(self.run_dir):
        fault = os.environ["FAULT"]
        if fault == "disk_full":
            raise OSError(errno.ENOSPC, "No space left on device", str(self.run_dir / "x.pt"))
        if fault == "memory":
            raise MemoryError()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_train(self, parts)
TrainingRun.train = faulty
"""


def sweep(tmp_path: Path, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """`cnnbench train -m TINY ARGS` over the sweep directory tmp_path/sweep."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    if fault is not None:
        hook = tmp_path / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(FAULT_IN_ONE_JOB)
        env.update(FAULT=fault, FAILING_JOB="trainer.seed=2", PYTHONPATH=os.pathsep.join(
            [str(hook), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "cnnbench", "train", "-m", *TINY, *args,
                           f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


def sweep_code(sweep_dir: Path) -> int:
    """The exit code `cnnbench train -m` gives the sweep, from what its jobs wrote."""
    from cnnbench.commands.train.sweep_report import report_failed_jobs

    return report_failed_jobs(Console(file=io.StringIO()), sweep_dir)


def assert_stopped_by(sweep_dir: Path, job_words: str, exit_code: int, reason: str) -> None:
    """The manifest names the job that stopped the sweep, which records its ending's code."""
    stopper = read_manifest(sweep_dir).stopper()
    assert stopper is not None and job_words in stopper.name
    metrics = json.loads(rundir.metrics_file(stopper).read_text())
    assert (metrics["status"], metrics["exit_code"]) == (rundir.FAILED, exit_code), metrics
    assert reason in metrics["reason"]
    assert sweep_code(sweep_dir) == exit_code


def test_a_fail_fast_sweep_stopped_by_a_mistake_exits_with_a_mistake_s_code(tmp_path):
    proc = sweep(tmp_path, "optimizer.lr=0.01,-1,0.02", "hydra.launcher.fail_fast=true")
    assert proc.returncode == 2 and "Traceback" not in proc.stdout, proc.stdout
    assert_stopped_by(tmp_path / "sweep", "optimizer.lr=-1", 2, "optimizer.lr=-1 is not valid")
    statuses = [rundir.read_metrics(d).get("status", rundir.NOT_STARTED)
                for d in sorted((tmp_path / "sweep").glob("[0-9]_*"))]
    assert statuses == [rundir.COMPLETED, rundir.FAILED, rundir.NOT_STARTED]


@pytest.mark.parametrize(("fault", "exit_code", "reason"), [
    ("disk_full", 2, "The disk holding"), ("memory", 1, "Out of memory"),
    ("sigkill", 137, "killed by signal 9 (SIGKILL")])
def test_a_fail_fast_parallel_sweep_exits_with_the_code_of_the_job_that_stopped_it(
        tmp_path, fault, exit_code, reason):
    proc = sweep(tmp_path, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
                 "trainer.seed=1,2,3", "hydra.launcher.fail_fast=true", fault=fault)
    assert proc.returncode == exit_code and "Traceback" not in proc.stdout, proc.stdout
    assert "fail_fast: the sweep stops" in proc.stdout
    assert_stopped_by(tmp_path / "sweep", "trainer.seed=2", exit_code, reason)


def test_a_fail_fast_sequential_sweep_exits_with_a_full_disk_s_code(tmp_path):
    proc = sweep(tmp_path, "trainer.seed=1,2,3", "hydra.launcher.fail_fast=true",
                 fault="disk_full")
    assert proc.returncode == 2 and "Traceback" not in proc.stdout, proc.stdout
    assert_stopped_by(tmp_path / "sweep", "trainer.seed=2", 2, "No space left on device")


def test_a_sweep_that_ran_every_job_exits_1_when_one_did_not_complete(tmp_path):
    proc = sweep(tmp_path, "optimizer.lr=0.01,-1")  # no fail_fast: the sweep runs to its end
    assert proc.returncode == 1 and "Traceback" not in proc.stdout, proc.stdout
    manifest = read_manifest(tmp_path / "sweep")
    assert manifest.stopper() is None
    failed = next(d for d in map(manifest.path_of, manifest.current()) if "lr=-1" in d.name)
    assert rundir.read_metrics(failed)["exit_code"] == 2  # the job's own ending, recorded
    assert sweep_code(tmp_path / "sweep") == 1


def test_the_sweep_s_exit_code_is_the_stopping_job_s_else_1_for_any_job_not_completed():
    assert sweep_exit_code([rundir.COMPLETED, rundir.PRUNED]) == 0
    assert sweep_exit_code([rundir.COMPLETED, rundir.FAILED, rundir.NOT_STARTED], 2) == 2
    for status in (rundir.FAILED, rundir.DIVERGED, rundir.INTERRUPTED, rundir.NOT_STARTED):
        assert sweep_exit_code([rundir.COMPLETED, status]) == 1
    assert [exit_code_of_process(code) for code in (-9, -15, 3, None)] == [137, 143, 3, 1]
    assert recorded_exit_code(rundir.FAILED, 2) == 2
    assert recorded_exit_code(rundir.FAILED, None) == 1  # a record from before exit codes
    assert recorded_exit_code(rundir.FAILED, True) == 1 and recorded_exit_code("failed", 999) == 1
    assert recorded_exit_code(rundir.PRUNED, None) == 0
