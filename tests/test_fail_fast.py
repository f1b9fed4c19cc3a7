"""hydra.launcher.fail_fast=true stops a sweep at its first failed job, with both of cnnbench's
own launchers: the jobs still running are stopped (they save and say `interrupted`), the others
are marked `not started`, the sweep exits as the failed job would have alone (1: a crash; see
tests/test_sweep_exit_codes.py), and the command it prints runs the sweep again to its end once
the fault is gone. A diverged job does not stop it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnbench.sweep.manifest import read_manifest

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "model=mlp"]
ENV = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

# A sitecustomize.py for the sweep: while the file FAULT_MARKER names exists, the job whose
# directory name holds FAILING_JOB fails as it starts, and every epoch of the others takes a
# second longer (a sleep: the jobs running beside the failing one are still running when it
# fails). Deleting the file is the fault being fixed.
FAULT_WHILE_MARKED = """
import os
import time
import cnnbench.engine.epoch as epoch
from cnnbench.run.lifecycle import TrainingRun
real_epoch, real_execute = epoch.train_one_epoch, TrainingRun.execute
def faulty(self):
    if os.path.exists(os.environ["FAULT_MARKER"]) and os.environ["FAILING_JOB"] in str(self.run_dir):
        raise RuntimeError("injected: the job's node lost its scratch disk")
    return real_execute(self)
def slow(*args, **kwargs):
    if os.path.exists(os.environ["FAULT_MARKER"]):
        time.sleep(1)
    return real_epoch(*args, **kwargs)
TrainingRun.execute = faulty
epoch.train_one_epoch = slow
"""


@pytest.fixture
def fault(tmp_path: Path):
    """Sweeps started with `shell` get the fault; yields the marker (delete it to fix it)."""
    hook, marker = tmp_path / "hook", tmp_path / "fault"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAULT_WHILE_MARKED)
    marker.touch()
    extra = {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
             "FAULT_MARKER": str(marker), "FAILING_JOB": "trainer.seed=2"}
    ENV.update(extra)
    try:
        yield marker
    finally:
        for key in extra:
            ENV.pop(key)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """A command line run as a user pastes it."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def line_after(text: str, heading: str) -> str:
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if heading in line)
    return lines[index + 1].strip()


def outcomes(sweep: Path) -> list[tuple[str, str | None]]:
    """(status, reason) of each job of the sweep, in the order of its manifest."""
    manifest = read_manifest(sweep)
    assert manifest is not None
    return [(json.loads((manifest.path_of(job) / "metrics.json").read_text())["status"],
             json.loads((manifest.path_of(job) / "metrics.json").read_text()).get("reason"))
            for job in manifest.current()]


def run_the_printed_command(first: subprocess.CompletedProcess, marker: Path, cwd: Path):
    command = line_after(first.stdout, "Run the sweep again for them")
    assert command.startswith("cnnbench train -m ") and "hydra.launcher.fail_fast=true" in command
    marker.unlink()  # whatever failed is fixed now
    again = shell(command, cwd)
    assert again.returncode == 0, again.stdout
    return again


STOPPED = "the sweep was stopped before this job started (job #1 failed, and " \
          "hydra.launcher.fail_fast=true stops the sweep at its first failure)"


def test_fail_fast_stops_a_sequential_sweep_at_its_first_failed_job(tmp_path, fault):
    sweep = tmp_path / "sweep"
    first = shell(" ".join(["cnnbench train -m", *TINY, "trainer.epochs=1",
                            "hydra.launcher.fail_fast=true", "trainer.seed=1,2,3",
                            f"hydra.sweep.dir={sweep}"]), tmp_path)
    assert first.returncode == 1, first.stdout
    assert outcomes(sweep) == [
        ("completed", None),
        ("failed", "RuntimeError: injected: the job's node lost its scratch disk"),
        ("not started", STOPPED)]
    text = " ".join(first.stdout.split())
    assert "1 completed, 1 failed (RuntimeError: injected" in text and "1 not started" in text
    assert "fail_fast: the sweep stops" in text
    again = run_the_printed_command(first, fault, tmp_path)
    assert [status for status, _ in outcomes(sweep)] == ["completed"] * 3, again.stdout
    assert ("skipped 1 completed job; ran 1 job again from the start (1 failed); started 1 job "
            "that had not started") in " ".join(again.stdout.split())


def test_fail_fast_stops_a_parallel_sweep_and_its_running_jobs(tmp_path, fault):
    sweep = tmp_path / "sweep"
    first = shell(" ".join(["cnnbench train -m hydra/launcher=parallel hydra.launcher.n_jobs=2",
                            *TINY, "trainer.epochs=8", "hydra.launcher.fail_fast=true",
                            "trainer.seed=1,2,3,4", f"hydra.sweep.dir={sweep}"]), tmp_path)
    assert first.returncode == 1, first.stdout
    assert outcomes(sweep) == [
        ("interrupted", "stopped by SIGTERM (kill, or a job scheduler)"),
        ("failed", "RuntimeError: injected: the job's node lost its scratch disk"),
        ("not started", STOPPED), ("not started", STOPPED)], first.stdout
    text = " ".join(first.stdout.split())
    assert "1 failed (RuntimeError: injected" in text and "2 not started" in text
    again = run_the_printed_command(first, fault, tmp_path)
    assert [status for status, _ in outcomes(sweep)] == ["completed"] * 4, again.stdout
    assert "started 2 jobs that had not started" in " ".join(again.stdout.split())


def test_fail_fast_goes_on_after_a_diverged_job_and_stops_after_a_failed_one(tmp_path):
    from cnnbench.rundir import write_json_atomic
    from hydra_plugins.cnnbench_launcher._stopping import failure_stops

    launcher = SimpleNamespace(fail_fast=True, stopped_by=None)
    jobs = []
    for idx, status in enumerate(["diverged", "interrupted", "failed", "failed"]):
        job = SimpleNamespace(idx=idx, overrides=[f"trainer.seed={idx}"], dir=tmp_path / str(idx))
        job.dir.mkdir()
        write_json_atomic(job.dir / "metrics.json", {"status": status, "reason": "r"})
        jobs.append(job)
    assert failure_stops(launcher, jobs[0]) is None and failure_stops(launcher, jobs[1]) is None
    assert launcher.stopped_by is None
    assert failure_stops(launcher, jobs[2]).startswith("job #2 failed")
    assert failure_stops(launcher, jobs[3]) is None  # stopped already, by the first failure
    assert launcher.stopped_by.startswith("job #2 failed")
    assert failure_stops(SimpleNamespace(fail_fast=False, stopped_by=None), jobs[2]) is None
