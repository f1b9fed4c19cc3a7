"""Sweeps keep going: a job killed hard costs only that job, stopping a sweep stops its jobs
cleanly, a failed job always fails the sweep, and job directory names are always safe."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from helpers import stop_signals_as_in_a_terminal

from cnnbench.rundir.naming import job_dirname
from cnnbench.sweep.outcome import sweep_outcomes, sweep_summary, with_sweep_dir

REPO = Path(__file__).resolve().parents[1]
TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false"]
PARALLEL = ["-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]
KILLED = "killed by signal 9 (SIGKILL; the out-of-memory killer sends this)"


def _ctrl_c_reaches_the_child() -> None:
    stop_signals_as_in_a_terminal()


def start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """The sweep in a session of its own: signals can go to its whole process group, as a
    terminal's Ctrl-C does."""
    return subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
                            preexec_fn=_ctrl_c_reaches_the_child, start_new_session=True)


def job_dirs(tmp_path: Path) -> list[Path]:
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1
    return sorted((p for p in sweeps[0].iterdir() if p.is_dir()),
                  key=lambda p: int(p.name.partition("_")[0]))


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


def running_jobs(tmp_path: Path) -> dict[int, dict]:
    """{job number: metrics} of the jobs whose metrics.json says they are training."""
    found = {}
    for file in tmp_path.glob("outputs/multirun/*/*/metrics.json"):
        try:
            data = json.loads(file.read_text())
        except ValueError:
            continue
        if data.get("status") == "running":
            found[int(file.parent.name.partition("_")[0])] = data
    return found


def wait_until(proc: subprocess.Popen, condition, timeout: float = 300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting\n{proc.communicate()[0]}")


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (one nobody reaped is dead all the same)."""
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def processes_in(folder: Path) -> list[int]:
    """Live processes working in `folder` (every process of a sweep started there does)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if Path(os.readlink(entry / "cwd")) == folder and alive(int(entry.name)):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


# -- job directory names ---------------------------------------------------------------------

def test_job_dirname_is_one_safe_directory():
    assert job_dirname(0, "a=1,b=x") == "0_a=1,b=x"
    assert job_dirname(3, "") == "3_"
    name = job_dirname(7, 'dataset.path=/data/x,+tag=a\\b:c*d?e"f<g>h|i\tj')
    assert name == "7_dataset.path=_data_x,+tag=a_b_c_d_e_f_g_h_i_j"


@pytest.mark.parametrize("value", ["x" * 300, "é" * 200, "a/b" * 120])
def test_long_job_dirname_is_cut_with_a_hash(value):
    name = job_dirname(12, f"+note={value}")
    assert len(name.encode()) <= 255 and name.startswith("12_+note=")
    assert "/" not in name
    assert name != job_dirname(12, f"+note={value}!")  # still unique when cut
    name.encode().decode()  # no multi-byte character cut in half


def test_sweep_outcomes_finds_nested_job_dirs(tmp_path):
    """Sweeps written before job names were made safe (or with a nesting subdir pattern)."""
    for job, status in (("0_tag=a/b,x=1", "failed"), ("1_tag=a/b,x=2", "completed")):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "config.yaml").write_text("{}\n")
        (tmp_path / job / "metrics.json").write_text(json.dumps({"status": status,
                                                                 "reason": "boom"}))
    (tmp_path / "2_x=3" / ".hydra").mkdir(parents=True)  # died before metrics.json
    (tmp_path / "2_x=3" / ".hydra" / "config.yaml").write_text("{}\n")
    statuses = sorted(s for s, _ in sweep_outcomes(tmp_path))
    assert statuses == ["completed", "failed", "no metrics.json"]


def test_a_sweep_directory_given_with_interpolations_is_fixed_before_hydra_starts():
    args = ["-m", "model=mlp,lenet", "hydra.sweep.dir=out/${hydra.job.name}_${now:%Y}_"
            "${hydra:runtime.choices.model}"]
    fixed, sweep = with_sweep_dir(args)
    assert sweep == Path(f"out/train_{time.strftime('%Y')}_lenet")
    assert fixed[:2] == args[:2] and fixed[2] == f"hydra.sweep.dir='{sweep}'"
    assert with_sweep_dir(["-m", "hydra.sweep.dir='a b'"]) == (["-m", "hydra.sweep.dir='a b'"],
                                                               Path("a b"))
    assert with_sweep_dir(["model=mlp"]) == (["model=mlp"], None)  # a single run has none
    assert with_sweep_dir(["hydra.mode=MULTIRUN", "x=1,2"])[1].parent == Path("outputs/multirun")


def test_sweep_summary_counts_each_status():
    text = sweep_summary([("completed", None)] * 3 + [("failed", KILLED)], Path("sw"))
    assert text == f"sweep: 4 jobs in sw: 3 completed, 1 failed ({KILLED})"


@pytest.mark.parametrize("launcher", [
    [],  # Hydra's basic launcher, in the command's own process; the command fixes the sweep dir
    ["hydra/launcher=parallel", "hydra.sweep.dir=outputs/multirun/${now:%H-%M-%S}"]])
def test_failed_job_with_a_slash_in_an_override_fails_the_sweep(tmp_path, cli, launcher):
    proc = cli("train", "-m", *launcher, *TINY, "trainer.epochs=1", "+tag=a/b",
               "trainer.batch_size=0,64", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    jobs = job_dirs(tmp_path)
    assert [j.name.partition(",")[0] for j in jobs] == ["0_+tag=a_b", "1_+tag=a_b"]
    assert sorted(metrics(j)["status"] for j in jobs) == ["completed", "failed"]
    assert "+tag=a/b" in yaml.safe_load((jobs[0] / ".hydra" / "overrides.yaml").read_text())
    assert ": 1 completed, 1 failed (trainer.batch_size=0 is not valid" in proc.stdout
    assert "1 of 2 jobs did not complete" in proc.stdout


def test_very_long_overrides_make_a_short_job_dir(tmp_path, cli):
    note = "n" * 300
    proc = cli("train", "-m", *TINY, "trainer.epochs=1", f"+note={note}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = job_dirs(tmp_path)
    assert len(job.name.encode()) <= 255 and job.name.startswith("0_+note=nnn")
    assert metrics(job)["status"] == "completed"
    assert f"+note={note}" in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())


# -- the parallel launcher -------------------------------------------------------------------

def test_job_killed_hard_does_not_stop_the_sweep(tmp_path):
    """The out-of-memory killer's SIGKILL to one job's process: that job is recorded as failed,
    the job running beside it completes, and the job still waiting starts and completes."""
    proc = start(tmp_path, *PARALLEL, *TINY, "trainer.epochs=300,1,1")
    slow = wait_until(proc, lambda: running_jobs(tmp_path).get(0))
    os.kill(slow["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    jobs = job_dirs(tmp_path)
    assert [metrics(j)["status"] for j in jobs] == ["failed", "completed", "completed"], out
    assert metrics(jobs[0])["reason"] == KILLED
    assert f": 2 completed, 1 failed ({KILLED})" in " ".join(out.split())
    assert not processes_in(tmp_path)


def both_trained_an_epoch(jobs: dict[int, dict]) -> dict[int, dict] | None:
    return jobs if len(jobs) == 2 and all(m.get("epochs_run") for m in jobs.values()) else None


@pytest.mark.parametrize("sig,code,group", [(signal.SIGTERM, 143, False),
                                            (signal.SIGINT, 130, False),
                                            (signal.SIGINT, 130, True)],
                         ids=["sigterm", "sigint", "ctrl-c-to-the-process-group"])
def test_stopping_a_sweep_stops_its_jobs_cleanly(tmp_path, cli, sig, code, group):
    proc = start(tmp_path, *PARALLEL, *TINY, "dataset.train_size=2000", "trainer.epochs=50",
                 "trainer.seed=1,2,3,4")
    started = wait_until(proc, lambda: both_trained_an_epoch(running_jobs(tmp_path)))
    if group:  # every process gets it at once; the jobs must save once, not be cut off
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == code, out
    # no job reports the parent's forwarded SIGTERM as "Signal 15 ignored due to race condition"
    assert "Traceback" not in out and "OSError" not in out and "race condition" not in out, out
    jobs = job_dirs(tmp_path)
    assert [metrics(j)["status"] for j in jobs] == ["interrupted", "interrupted",
                                                    "not started", "not started"], out
    for job in jobs[:2]:
        assert (job / "checkpoints" / "last.pt").is_file()
    assert metrics(jobs[2])["reason"].startswith("the sweep was stopped before this job started")
    assert not [pid for pid in (m["pid"] for m in started.values()) if alive(pid)]
    assert not processes_in(tmp_path)
    assert ": 2 interrupted (" in out and ", 2 not started" in " ".join(out.split())
    compare = cli("compare", str(jobs[0].parent), cwd=tmp_path, env={"COLUMNS": "200"})
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "4 runs did not complete" in compare.stdout and "not started" in compare.stdout


def test_sweep_process_killed_hard_stops_its_jobs(tmp_path):
    """SIGKILL to the sweep's own process: its jobs get SIGTERM from the kernel, save and stop,
    instead of training on unwatched."""
    proc = start(tmp_path, *PARALLEL, *TINY, "dataset.train_size=2000", "trainer.epochs=50",
                 "trainer.seed=1,2")
    started = wait_until(proc, lambda: both_trained_an_epoch(running_jobs(tmp_path)))
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.time() + 120
    while any(alive(m["pid"]) for m in started.values()) and time.time() < deadline:
        time.sleep(0.1)
    assert not [m["pid"] for m in started.values() if alive(m["pid"])]
    for job in job_dirs(tmp_path):
        assert metrics(job)["status"] == "interrupted"
        assert (job / "checkpoints" / "last.pt").is_file()


def test_optuna_search_with_the_parallel_launcher(tmp_path, cli):
    """The sweeper gets each trial's own result back, in order, from jobs run side by side."""
    args = [a for a in TINY if not a.startswith("trainer.batch_size")]
    proc = cli("train", "hparams_search=lenet_mnist", "hydra/launcher=parallel",
               "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4",
               *args, "trainer.epochs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = job_dirs(tmp_path)
    assert len(jobs) == 4
    results = yaml.safe_load((jobs[0].parent / "optimization_results.yaml").read_text())
    best = max(jobs, key=lambda j: metrics(j)["best_val_acc"])
    assert results["best_value"] == metrics(best)["best_val_acc"]
    overrides = dict(o.split("=", 1) for o in
                     yaml.safe_load((best / ".hydra" / "overrides.yaml").read_text()))
    assert {k: str(v) for k, v in results["best_params"].items()} == \
        {k: overrides[k] for k in results["best_params"]}


def test_the_launcher_is_in_the_wheel(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True,
                   timeout=300)
    (wheel,) = tmp_path.glob("cnnbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hydra_plugins/cnnbench_launcher/parallel_launcher.py" in names
    assert "hydra_plugins/cnnbench_launcher/_processes.py" in names
    assert "hydra_plugins/__init__.py" not in names  # a namespace shared with other plugins
