"""One run across machines: two torchrun agents on this machine play two nodes (c10d
rendezvous, gloo), each starting one process; the run directory, the stop signal that reaches
one node, and resuming on another number of processes are checked for real."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli
from helpers import stop_signals_as_in_a_terminal

ARGS = ["model=mlp", "dataset=synthetic", "dataset.train_size=640", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "hydra.run.dir=run"]
ENV = {**os.environ, "CNNBENCH_DIST_BACKEND": "gloo", "PYTHONUNBUFFERED": "1",
       "CNNBENCH_DIST_TIMEOUT": "60", "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(cwd: Path, *args: str, cwd1: Path | None = None) -> list[subprocess.Popen]:
    """`torchrun --nnodes=2 --node_rank=N --nproc-per-node=1 ... -m cnnbench train ARGS` for
    N = 0, 1, as two machines would run it (node 1 in `cwd1`: a machine with its own disk)."""
    port = free_port()
    return [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}",
         "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
         "--rdzv-id=twonodes", "-m", "cnnbench", "train", *args],
        cwd=cwd1 if node == 1 and cwd1 is not None else cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=stop_signals_as_in_a_terminal) for node in (0, 1)]


def finish(nodes: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str]]:
    """Each node's exit code and output; a node still running after `timeout` fails the test."""
    ended = []
    for proc in nodes:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in nodes:
                p.kill()
            pytest.fail("a node hung instead of ending")
        ended.append((proc.returncode, out))
    return ended


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def epochs_of(run: Path) -> list[int]:
    with open(run / "history.csv", newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_two_nodes_train_one_run_that_matches_one_process(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    run_cli("train", *ARGS, "trainer.epochs=2", cwd=one, check=True)
    ended = finish(start_nodes(two, *ARGS, "trainer.epochs=2"))
    assert [code for code, _ in ended] == [0, 0], ended
    assert [p.name for p in two.iterdir()] == ["run"]  # one run directory, and nothing else
    single, multi = metrics_of(one / "run"), metrics_of(two / "run")
    assert multi["status"] == "completed" and multi["world_size"] == 2
    assert multi["distributed"] == {**multi["distributed"], "nodes": 2, "world_size": 2,
                                    "processes_per_node": 1, "backend": "gloo",
                                    "run_id": "twonodes", "storage": "shared"}
    first_lines = [out.splitlines() for _, out in ended]
    said = [line for lines in first_lines for line in lines if line.startswith("cnnbench mlp")]
    assert len(said) == 1 and "2 nodes x 1 process (gloo" in said[0]
    assert "run directory on storage every node shares" in said[0]
    # the same global batch of the same images: the same training, up to the order in which
    # the two processes' gradients are added (float rounding)
    assert multi["test/acc"] == pytest.approx(single["test/acc"], abs=1e-6)
    assert multi["test/loss"] == pytest.approx(single["test/loss"], rel=1e-4)
    assert multi["last_epoch_metrics"]["train/loss"] == pytest.approx(
        single["last_epoch_metrics"]["train/loss"], rel=1e-4)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_nodes_without_shared_storage_keep_the_run_on_rank_0s_machine_only(tmp_path):
    """Each node runs in its own folder, and `hydra.run.dir=run` is relative: the two "machines"
    see two different run directories, as nodes with their own disks would."""
    disks = [tmp_path / "node0", tmp_path / "node1"]
    for disk in disks:
        disk.mkdir()
    ended = finish(start_nodes(disks[0], *ARGS, "trainer.epochs=1", cwd1=disks[1]))
    assert [code for code, _ in ended] == [0, 0], ended
    written = [d for d in disks if (d / "run" / "metrics.json").exists()]
    assert len(written) == 1  # rank 0's machine (the rendezvous decides which node that is)
    metrics = metrics_of(written[0] / "run")
    assert metrics["status"] == "completed"
    assert metrics["distributed"]["storage"] == "rank 0 only"
    assert (written[0] / "run" / "checkpoints" / "last.pt").is_file()
    other = next(d for d in disks if d not in written)
    assert files_under(other) == []  # the other machine wrote nothing
    said = "\n".join(out for _, out in ended)
    assert "run directory on rank 0's machine only" in said


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> tuple[Path, list[tuple[int, str]]]:
    """A two-node run of 5 epochs whose second node's torchrun got SIGTERM after epoch 1."""
    cwd = tmp_path_factory.mktemp("interrupted")
    nodes = start_nodes(cwd, *ARGS, "trainer.epochs=5")
    history, deadline = cwd / "run" / "history.csv", time.monotonic() + 120
    while not history.exists() or len(history.read_text().splitlines()) < 2:
        if any(p.poll() is not None for p in nodes) or time.monotonic() > deadline:
            finish(nodes, timeout=5)
            pytest.fail("the run ended or hung before its first epoch")
        time.sleep(0.05)
    nodes[1].send_signal(signal.SIGTERM)
    return cwd / "run", finish(nodes)


def test_sigterm_to_one_node_stops_every_process_interrupted_with_last_pt(interrupted):
    run, ended = interrupted
    assert all(code != 0 for code, _ in ended)  # both nodes ended: none waits on a dead peer
    text = "\n".join(out for _, out in ended)
    # the worker torchrun reports is rank 0's, and it ended as `interrupted` ends (128 + 15)
    assert "exitcode  : 143" in text
    assert not re.search(r'File ".*/cnnbench/', text)  # torchrun's own tracebacks, no others
    assert text.count("interrupted: the run directory") == 1  # rank 0 says it, once
    metrics = metrics_of(run)
    assert metrics["status"] == "interrupted"
    assert "SIGTERM" in metrics["reason"] and "every process stopped" in metrics["reason"]
    assert 1 <= metrics["epochs_run"] < 5
    assert (run / "checkpoints" / "last.pt").is_file()
    assert epochs_of(run) == list(range(1, metrics["epochs_run"] + 1))
    assert not (run / ".cnnbench.lock").exists()


def resumed_copy(interrupted, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(interrupted[0], copy)
    return copy


@pytest.fixture(scope="module")
def resumed_alone(interrupted, tmp_path_factory) -> Path:
    """The interrupted run, copied and resumed by one plain process."""
    cwd = tmp_path_factory.mktemp("alone")
    run = resumed_copy(interrupted, cwd)
    run_cli("train", f"trainer.resume={run}", cwd=cwd, check=True)
    return run


def completed_where_it_stopped(run: Path, interrupted) -> dict:
    metrics = metrics_of(run)
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 5
    assert metrics["resumed_from_epoch"] == metrics_of(interrupted[0])["epochs_run"]
    assert epochs_of(run) == [1, 2, 3, 4, 5]  # one history, continued where it stopped
    return metrics


def test_interrupted_two_node_run_resumes_on_one_process(interrupted, resumed_alone):
    metrics = completed_where_it_stopped(resumed_alone, interrupted)
    assert metrics["world_size"] == 1 and metrics["distributed"] is None


def test_interrupted_two_node_run_resumes_on_two_nodes_with_the_one_process_result(
        interrupted, resumed_alone, tmp_path):
    run = resumed_copy(interrupted, tmp_path)
    ended = finish(start_nodes(tmp_path, f"trainer.resume={run}"))
    assert [code for code, _ in ended] == [0, 0], ended
    metrics = completed_where_it_stopped(run, interrupted)
    assert metrics["world_size"] == 2
    # the same global batches from the same checkpoint: one result, up to float rounding
    alone = metrics_of(resumed_alone)
    assert metrics["test/loss"] == pytest.approx(alone["test/loss"], rel=1e-4)
    assert metrics["test/acc"] == pytest.approx(alone["test/acc"], abs=1e-6)


def test_a_second_job_into_a_held_run_directory_is_refused_naming_the_job(interrupted,
                                                                         tmp_path):
    run = resumed_copy(interrupted, tmp_path)
    from cnnbench.rundir.lock import process_start_time

    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": "train",
              "started": process_start_time(os.getpid()), "since": "2026-01-01 00:00:00",
              "job": {"launcher": "torchrun", "rendezvous": "node7:29500", "run_id": "job42",
                      "world_size": 16, "nodes": 2}}
    (run / ".cnnbench.lock").write_text(json.dumps(holder))
    ended = finish(start_nodes(tmp_path, f"trainer.resume={run}"), timeout=90)
    assert all(code != 0 for code, _ in ended)
    text = "\n".join(out for _, out in ended)
    assert "exitcode  : 2" in text  # a mistake's exit code, on every process
    assert text.count("is being written by another cnnbench process") == 1  # rank 0 says it
    assert "torchrun job job42 at node7:29500, 16 processes on 2 nodes" in text
    assert metrics_of(run)["status"] == "interrupted"  # the refused job wrote nothing


@pytest.fixture
def one_process_group():
    """A gloo group of this process alone, so that collectives run in the test itself."""
    import torch.distributed as dist

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_a_stop_signal_under_torchrun_waits_for_the_step_where_every_process_stops(
        one_process_group):
    from cnnbench.endings import Stopped, install_stop_handlers
    from cnnbench.engine.distributed import DistInfo
    from cnnbench.engine.stops import AgreedStops

    restore = install_stop_handlers()
    try:
        with AgreedStops(DistInfo(rank=0, world_size=2, local_world_size=1)) as stops:
            stops.check()  # nothing held: training goes on
            os.kill(os.getpid(), signal.SIGTERM)  # held, not raised where the process is
            with pytest.raises(Stopped) as stopped:
                for _ in stops.checked([1, 2, 3]):
                    pytest.fail("a batch was trained after the signal")
            assert stopped.value.signum == signal.SIGTERM
            assert "received by rank 0 of 2" in str(stopped.value)
            os.kill(os.getpid(), signal.SIGTERM)
            with pytest.raises(Stopped):  # a second signal to a process that holds one
                os.kill(os.getpid(), signal.SIGTERM)
    finally:
        restore()


def test_the_lock_of_a_torchrun_job_names_its_run_id_store_and_size(tmp_path, monkeypatch):
    from cnnbench.errors import UserError
    from cnnbench.rundir import RunLock

    for key, value in {"TORCHELASTIC_RUN_ID": "job42", "MASTER_ADDR": "node7",
                       "MASTER_PORT": "29500", "WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8",
                       "GROUP_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    with RunLock(tmp_path / "run") as lock:
        held = json.loads(lock.path.read_text())
        assert held["job"] == {"launcher": "torchrun", "rendezvous": "node7:29500",
                               "run_id": "job42", "world_size": 16, "nodes": 2}
        monkeypatch.setattr(socket, "gethostname", lambda: "another-machine")
        with pytest.raises(UserError, match="torchrun job job42 at node7:29500, 16 processes "
                                            "on 2 nodes"):
            RunLock(tmp_path / "run").refuse_if_held()


def test_a_collective_whose_peer_went_away_is_one_paragraph_not_a_traceback():
    from cnnbench.endings import ending_of

    gloo = RuntimeError("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error "
                        "[127.0.0.1]:37613: Connection reset by peer. This is typically caused "
                        "by a remote worker hanging or bugs in the application.")
    ending = ending_of(gloo)
    assert ending.status == "failed" and ending.exit_code == 1
    assert ending.reason.startswith("Another process of this torchrun job went away")
    assert "Read error [127.0.0.1]:37613: Connection reset by peer)" in ending.reason
    assert "trainer.resume=" in ending.reason
    assert ending_of(RuntimeError("Connection reset by peer")).reason.startswith("RuntimeError")
