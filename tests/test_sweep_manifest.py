"""A sweep directory records its jobs in a manifest, and its outcome, its advice and `cnnbench
compare` come from the latest plan's jobs there: real `cnnbench train -m` processes with tiny
jobs, with the default launcher and with hydra/launcher=parallel where they differ."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CRASH_WHILE_MARKED

from cnnbench import rundir
from cnnbench.sweep.manifest import read_manifest

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "model=mlp", "trainer.epochs=1"]
LAUNCHERS = pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]],
    ids=["default-launcher", "parallel-launcher"])
BIN = str(Path(sys.executable).parent)


def shell(command: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """A printed command, run exactly as a user pastes it."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **(env or {}),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def text(proc: subprocess.CompletedProcess) -> str:
    return " ".join((proc.stdout + (proc.stderr or "")).split())


def line_after(out: str, marker: str) -> str:
    lines = out.splitlines()
    return lines[next(i for i, line in enumerate(lines) if marker in line) + 1].strip()


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under `folder`, a file with its bytes' hash and its mtime."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                         if p.is_file() else "dir", p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def job_named(sweep: Path, ending: str) -> Path:
    (job,) = [p for p in sweep.iterdir() if p.is_dir() and p.name.endswith(ending)]
    return job


@pytest.fixture
def crashing(tmp_path):
    """(env, marker): with env, a job with trainer.seed=2 fails while the marker exists."""
    hook, marker = tmp_path / "hook", tmp_path / "crash"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_WHILE_MARKED)
    marker.touch()
    return {"PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
            "CRASH_MARKER": str(marker)}, marker


@LAUNCHERS
def test_a_sweep_run_again_with_an_added_key_counts_only_its_new_jobs(tmp_path, cli, crashing,
                                                                      launcher):
    env, marker = crashing
    args = ["train", "-m", *launcher, *TINY, "trainer.seed=1,2", "hydra.sweep.dir=sw"]
    first = cli(*args, cwd=tmp_path, env=env)
    assert first.returncode == 1 and "sweep: 2 jobs in sw: 1 completed, 1 failed" in text(first)
    sweep = tmp_path / "sw"
    orphans = {p.name: snapshot(p) for p in sweep.iterdir() if p.is_dir()}

    again = cli(*args, "trainer.tta_flip=true", cwd=tmp_path, env=env)  # 2 new identities
    assert again.returncode == 1, again.stdout + again.stderr
    assert "sweep: 2 jobs in sw: 1 completed, 1 failed (Out of memory" in text(again), text(again)
    assert "2 earlier jobs are no longer part of this sweep (1 completed, 1 failed)" in \
        text(again)
    command = line_after(again.stdout, "Run the sweep again for them")
    assert "trainer.tta_flip=true" in command
    marker.unlink()  # whatever failed is fixed now
    last = shell(command, tmp_path, env)
    assert last.returncode == 0, last.stdout
    assert "sweep: 2 jobs in sw: 2 completed" in text(last)
    assert "this time: skipped 1 completed job; resumed 1 job from its last.pt" in text(last)
    assert "2 earlier jobs are no longer part of this sweep (1 completed, 1 failed)" in text(last)
    for name, files in orphans.items():  # the earlier jobs are left as they were
        assert snapshot(sweep / name) == files
    manifest = read_manifest(sweep)
    assert len(manifest.jobs) == 4 and len(manifest.current()) == 2
    assert all("trainer.tta_flip=true" in map(str.lower, job.overrides)
               and job.status == "completed" for job in manifest.current())


def test_a_job_resumed_by_hand_is_still_one_job_of_its_sweep(tmp_path, cli):
    args = ["train", "-m", *TINY, "trainer.seed=1,2", "hydra.sweep.dir=sw"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    sweep = tmp_path / "sw"
    job = job_named(sweep, "trainer.seed=1")
    resumed = cli("train", f"trainer.resume={job}", "trainer.epochs=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert rundir.read_metrics(job)["epochs_run"] == 2  # its identity is not the sweep's now
    before = snapshot(job)

    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: 2 jobs in sw: 2 completed" in text(again)
    assert "this time: skipped 2 completed jobs" in text(again)
    assert len([p for p in sweep.iterdir() if p.is_dir()]) == 2  # no new job
    assert snapshot(job) == before


def test_a_single_run_into_a_sweep_directory_is_refused_with_nothing_written(tmp_path, cli):
    assert cli("train", "-m", *TINY, "trainer.seed=1,2", "hydra.sweep.dir=sw",
               cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path)
    for run_dir in ("sw", "sw/extra", "sw/${now:%H-%M-%S}"):
        proc = cli("train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr, run_dir
        assert len((proc.stdout + proc.stderr).strip().splitlines()) == 1
        assert f"{tmp_path / 'sw'} (it holds .cnnbench_sweep.json)" in text(proc)
        assert "would not be one of the sweep's jobs" in text(proc)
        assert snapshot(tmp_path) == before


def test_a_run_left_in_a_sweep_directory_is_not_one_of_its_jobs(tmp_path, cli):
    """Runs an older cnnbench let in (hydra.run.dir=<the sweep>), or copied there: neither
    `cnnbench compare` nor the sweep run again takes them for its jobs."""
    args = ["train", "-m", *TINY, "trainer.seed=1,2", "hydra.sweep.dir=sw"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    cli("train", *TINY, "trainer.seed=7", "hydra.run.dir=single", cwd=tmp_path, check=True)
    sweep = tmp_path / "sw"
    shutil.copytree(tmp_path / "single", sweep / "stray")
    for entry in (tmp_path / "single").iterdir():  # the sweep directory itself a run's
        (shutil.copytree if entry.is_dir() else shutil.copy)(entry, sweep / entry.name)

    compare = cli("compare", "sw", cwd=tmp_path, env={"COLUMNS": "200"})
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "2 runs in 1 group" in compare.stdout and "stray" not in compare.stdout
    runs = (sweep / "comparison_runs.csv").read_text().splitlines()
    assert len(runs) == 3 and all("trainer.seed=7" not in row for row in runs)
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: 2 jobs in sw: 2 completed" in text(again)
    assert "this time: skipped 2 completed jobs" in text(again)


def test_a_sweep_directory_from_before_the_manifest_is_read_and_continued(tmp_path, cli):
    args = ["train", "-m", *TINY, "hydra.sweep.dir=sw"]
    assert cli(*args, "trainer.seed=1,2", cwd=tmp_path).returncode == 0
    sweep = tmp_path / "sw"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    old = {"pid": 1, "jobs": [{"action": "new", "earlier": None, "run_dir": str(job)}
                              for job in jobs]}  # what the latest run did, as kept before
    (sweep / rundir.SWEEP_RECORD_FILE).write_text(json.dumps(old))
    assert read_manifest(sweep) is None
    compare = cli("compare", "sw", cwd=tmp_path, env={"COLUMNS": "200"})
    assert compare.returncode == 0 and "2 runs in 1 group" in compare.stdout

    again = cli(*args, "trainer.seed=1,2,3", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: 3 jobs in sw: 3 completed" in text(again)
    assert "this time: skipped 2 completed jobs; 1 new job" in text(again)
    manifest = read_manifest(sweep)
    assert sorted(manifest.path_of(job) for job in manifest.current())[:2] == jobs
    assert [job.action for job in manifest.current()] == ["skip", "skip", "new"]


def test_a_run_directory_inside_a_sweep_from_before_the_manifest_is_refused_too(tmp_path):
    from cnnbench.commands.train.placement import check_run_placement as check_not_in_a_sweep
    from cnnbench.errors import UserError

    (tmp_path / "old" / "0_x=1").mkdir(parents=True)
    (tmp_path / "old" / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(UserError, match=r"old \(it holds multirun.yaml\)"):
        check_not_in_a_sweep([f"hydra.run.dir={tmp_path / 'old' / 'new'}"], resuming=False)
    check_not_in_a_sweep([f"hydra.run.dir={tmp_path / 'old' / '0_x=1'}"], resuming=True)
    check_not_in_a_sweep([f"hydra.run.dir={tmp_path / 'elsewhere'}"], resuming=False)


def test_a_manifest_entry_that_is_not_a_job_of_the_sweep_is_ignored(tmp_path):
    entries = [{"hash": "a", "dir": "0_x=1", "overrides": ["x=1"], "plan": 2},
               {"hash": "b", "dir": "../outside", "plan": 2},
               {"hash": "c", "dir": "/abs", "plan": 2},
               {"dir": "1_x=2", "plan": 2}, "junk"]
    (tmp_path / rundir.SWEEP_RECORD_FILE).write_text(json.dumps(
        {"version": 2, "plan": 2, "pid": None, "jobs": entries}))
    manifest = read_manifest(tmp_path)
    assert [(job.digest, job.dir, job.overrides) for job in manifest.current()] == \
        [("a", "0_x=1", ["x=1"])]
    (tmp_path / rundir.SWEEP_RECORD_FILE).write_text("{not json")
    assert read_manifest(tmp_path) is None


def test_the_advice_after_ctrl_c_resumes_only_the_latest_plans_jobs(tmp_path):
    from cnnbench.sweep.advice import interrupted_advice

    for name in ("0_x=1", "1_x=2", "0_x=1/.earlier/1"):  # an earlier job and an earlier attempt
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "last.pt").write_bytes(b"")
        (tmp_path / name / "metrics.json").write_text('{"status": "interrupted"}')
    (tmp_path / rundir.SWEEP_RECORD_FILE).write_text(json.dumps({"version": 2, "plan": 2, "jobs": [
        {"hash": "a", "dir": "0_x=1", "plan": 2}, {"hash": "b", "dir": "1_x=2", "plan": 1}]}))
    advice = interrupted_advice([], tmp_path)
    assert advice.count("trainer.resume=") == 1 and "0_x=1" in advice
    assert "1_x=2" not in advice and ".earlier" not in advice


def test_a_search_s_jobs_are_every_trial_of_every_run_of_its_command(tmp_path):
    from cnnbench.sweep.manifest import Job, Manifest, write_manifest

    jobs = [Job("a" * 8, "0_+search.trial=0", ["+search.trial=0"], 1),
            Job("b" * 8, "0_+search.trial=1", ["+search.trial=1"], 2)]
    write_manifest(Manifest(tmp_path, 2, None, jobs, search=True))
    search = read_manifest(tmp_path)
    assert search.search and [j.dir for j in search.current()] == [j.dir for j in jobs]
    assert search.earlier() == []
    write_manifest(Manifest(tmp_path, 2, None, jobs))  # a sweep: the latest plan's jobs only
    sweep = read_manifest(tmp_path)
    assert not sweep.search and [j.dir for j in sweep.current()] == ["0_+search.trial=1"]
    assert [j.dir for j in sweep.earlier()] == ["0_+search.trial=0"]
