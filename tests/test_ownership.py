"""One owner of a run directory: `cnnbench train` takes the run's lock before Hydra writes
anything into it and holds it until the process ends; a lock's process is known by its pid and
its start time. Real `cnnbench` processes, real signals, real files."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import stop_signals_as_in_a_terminal, trained_run

from cnnbench.rundir import LOCK_FILE
from cnnbench.rundir.lock import process_start_time

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=256", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.epochs=1", "trainer.device=cpu",
        "trainer.progress=false", "evaluation.plots=false", "evaluation.table=false",
        "hydra.run.dir=run"]
WATCHED = (".hydra/config.yaml", ".hydra/overrides.yaml", "train.log", "metrics.json",
           "checkpoints/last.pt")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real one-epoch run, copied by each test that resumes it."""
    return trained_run(tmp_path_factory, TINY)


@pytest.fixture
def run(trained, tmp_path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def start(cwd: Path, *args: str, umask: int | None = None) -> subprocess.Popen:
    def child() -> None:
        stop_signals_as_in_a_terminal()
        if umask is not None:
            os.umask(umask)

    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
                            preexec_fn=child)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def snapshot(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in WATCHED}


def lock_owner(run: Path) -> dict:
    try:
        return json.loads((run / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}


def stored_epochs(run: Path) -> int:
    import yaml

    return yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["trainer"]["epochs"]


def the_paragraph(code: int, out: str) -> str:
    """The one `error:` paragraph of a refused command (exit 2, no traceback)."""
    assert code == 2 and "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("error:")]
    return line


def test_a_second_resume_is_refused_before_it_writes_a_byte(run):
    first = start(run.parent, "train", f"trainer.resume={run}", "trainer.epochs=4",
                  umask=0o027)
    try:
        deadline = time.time() + 120
        while lock_owner(run).get("pid") != first.pid:  # taken before Hydra starts
            assert first.poll() is None, first.communicate()[0]
            assert time.time() < deadline, "the first resume never took the lock"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)  # alive and owning the run, writing nothing
        assert (run / LOCK_FILE).stat().st_mode & 0o777 == 0o640  # umask 027
        before = snapshot(run)
        second = start(run.parent, "train", f"trainer.resume={run}", "trainer.epochs=9")
        line = the_paragraph(*finish(second))
        assert "being written by another cnnbench process" in line
        assert f"pid {first.pid}" in line
        assert snapshot(run) == before, "the refused resume wrote into the run"
    finally:
        first.send_signal(signal.SIGCONT)
    code, out = finish(first)
    assert code == 0, out
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 4
    assert stored_epochs(run) == 4
    assert not (run / LOCK_FILE).exists()


def test_two_resumes_started_together_leave_the_config_of_the_one_that_ran(run):
    first = start(run.parent, "train", f"trainer.resume={run}", "trainer.epochs=4")
    time.sleep(0.3)
    second = start(run.parent, "train", f"trainer.resume={run}", "trainer.epochs=9")
    results = {4: finish(first), 9: finish(second)}
    refused = [epochs for epochs, (code, out) in results.items() if code == 2]
    assert len(refused) == 1, results
    assert "another cnnbench process" in the_paragraph(*results[refused[0]])
    (ran,) = [epochs for epochs in results if epochs not in refused]
    assert results[ran][0] == 0, results[ran][1]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == ran
    assert stored_epochs(run) == ran
    assert f"trainer.epochs={ran}" in (run / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.skipif(process_start_time(1) is None, reason="no /proc/1/stat to read")
@pytest.mark.parametrize("stale", [True, False], ids=["another start time", "its start time"])
def test_a_lock_naming_a_live_pid_holds_the_run_only_with_its_start_time(run, stale):
    started = process_start_time(1) + (12345 if stale else 0)
    lock = {"pid": 1, "host": socket.gethostname(), "started": started, "command": "train"}
    (run / LOCK_FILE).write_text(json.dumps(lock))
    before = snapshot(run)
    proc = start(run.parent, "train", f"trainer.resume={run}", "trainer.epochs=2")
    code, out = finish(proc)
    if stale:  # pid 1 is alive, but it is not the process that wrote the lock
        assert code == 0, out
        assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2
        assert not (run / LOCK_FILE).exists()
    else:
        assert "pid 1 on" in the_paragraph(code, out)
        assert snapshot(run) == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_the_lock_follows_the_umask(tmp_path, umask, mode):
    script = ("import os, sys; from cnnbench.rundir import RunLock; "
              f"os.umask({umask}); lock = RunLock(sys.argv[1]); lock.acquire(); "
              "print(oct(os.stat(lock.path).st_mode & 0o777)); lock.release()")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == oct(mode)
    assert not (tmp_path / "run").exists()  # the folder it made for the lock alone is gone


def test_a_new_run_refused_by_a_live_lock_leaves_its_folder_as_it_was(tmp_path, cli):
    folder = tmp_path / "taken"
    folder.mkdir()
    lock = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": process_start_time(os.getpid())}
    (folder / LOCK_FILE).write_text(json.dumps(lock))
    proc = cli("train", *TINY[:-1], f"hydra.run.dir={folder}", cwd=tmp_path)
    assert "being written by another cnnbench process" in the_paragraph(
        proc.returncode, proc.stdout + proc.stderr)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]
    assert json.loads((folder / LOCK_FILE).read_text()) == lock


def test_a_named_process_is_gone_when_it_ended_or_its_pid_has_another_start_time():
    from cnnbench.rundir.lock import process_gone, this_process

    me = this_process()
    assert not process_gone(me)
    if me["started"] is not None:  # a pid that now belongs to another process
        assert process_gone({**me, "started": me["started"] + 1})
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    assert process_gone({"pid": ended.pid, "host": me["host"], "started": None})
    # another machine's process cannot be seen from here: it is taken to be alive
    assert not process_gone({"pid": ended.pid, "host": me["host"] + "-elsewhere"})
