"""Runs logged to a real MLflow tracking server started on localhost, read back through
MlflowClient: params, per-epoch metrics, test metrics, status and pictures; a sweep as one
parent run with its jobs nested; an unreachable server and a missing package."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import run_cli
from helpers import stop_signals_as_in_a_terminal

HOOK = Path(__file__).resolve().parent / "fault_hook"
# a sitecustomize that stops the MLflow server (process group SERVER_PGID) as the first epoch
# ends, before the run logs that epoch: the server goes down in the middle of a run
SERVER_DIES = """
import os, signal, time
import cnnbench.run.trackers as trackers
real = trackers.Trackers.epoch
def epoch(self, row):
    if os.environ.get("SERVER_PGID"):
        os.killpg(int(os.environ.pop("SERVER_PGID")), signal.SIGKILL)
        time.sleep(1)
    return real(self, row)
trackers.Trackers.epoch = epoch
"""

TINY = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.epochs=2", "trainer.device=cpu",
        "trainer.progress=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow_server")) as (uri, _):
        yield uri


@contextlib.contextmanager
def mlflow_server(tmp: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mlflow server` on a free port, with its own database and artifact folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen(  # `mlflow server`, with this Python's mlflow
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{tmp / 'db'}",
         "--default-artifact-root", str(tmp / "art"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=open(tmp / "server.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,  # without the server's job runners (processes it needs not)
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((tmp / "server.log").read_text()[-3000:]) from None
            time.sleep(0.5)
    try:
        yield uri, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str, experiment: str):
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment} on the server"
    return client, client.search_runs([exp.experiment_id])


def test_a_run_shows_its_params_epochs_test_metrics_status_and_pictures(server, tmp_path):
    run_cli("train", "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={server}",
            "logger.mlflow.experiment=single", "hydra.run.dir=run", *TINY, cwd=tmp_path,
            check=True)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    client, runs = _runs(server, "single")
    [run] = runs
    options = {k: str(record[k]) for k in
               ("model", "dataset", "optimizer", "lr", "scheduler", "augmentation",
                "batch_size", "epochs", "seed")}
    assert run.data.params == options
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert [m.step for m in history] == [1, 2]
    assert [m.value for m in history][-1] == pytest.approx(
        record["last_epoch_metrics"]["val/acc"])
    assert run.data.metrics["test/acc"] == pytest.approx(record["test/acc"])
    assert run.data.tags["status"] == "completed"
    assert run.info.status == "FINISHED"
    assert run.data.tags["git_commit"] == record["git"]["commit"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "misclassified.png", "history.csv"} <= artifacts


@pytest.mark.parametrize("launcher", ["cnnbench_sequential", "parallel"])
def test_a_sweep_is_one_parent_run_with_its_jobs_nested(server, tmp_path, launcher):
    """Also when its jobs are processes that start together (hydra/launcher=parallel)."""
    jobs = ["hydra.launcher.n_jobs=2"] if launcher == "parallel" else []
    proc = run_cli("train", "-m", "trainer.seed=1,2", "logger=[tensorboard,mlflow]",
                   f"logger.mlflow.tracking_uri={server}", f"logger.mlflow.experiment={launcher}",
                   f"hydra/launcher={launcher}", *jobs, "hydra.sweep.dir=the_sweep",
                   "evaluation.enabled=false", *TINY, cwd=tmp_path, check=True)
    assert "warning:" not in proc.stdout, proc.stdout
    _, runs = _runs(server, launcher)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.run_name for p in parents] == ["the_sweep"]
    assert len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(c.data.params["seed"] for c in children) == ["1", "2"]
    assert {c.data.tags["sweep"] for c in children} == {"the_sweep"}


def test_an_unreachable_server_leaves_the_run_completed_with_one_warning(tmp_path):
    proc = run_cli("train", "logger=[tensorboard,mlflow]",
                   f"logger.mlflow.tracking_uri=http://127.0.0.1:{_free_port()}",
                   "hydra.run.dir=run", "evaluation.enabled=false", *TINY, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"
    warnings = [line for line in proc.stdout.splitlines() if "MLflow" in line or "mlflow" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: mlflow could not start")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_mlflow_without_its_package_is_refused_in_one_paragraph(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    proc = run_cli("train", "logger=[tensorboard,mlflow]", "hydra.run.dir=run", *TINY,
                   cwd=tmp_path, env={"PYTHONPATH": str(hook)})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert 'pip install -e ".[mlflow]"' in out
    assert "Traceback" not in out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_interrupted_run_ends_in_mlflow_with_its_status(server, tmp_path):
    paused = tmp_path / "paused"
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(HOOK),
           "CNNBENCH_PAUSE_AT": "cnnbench.run.lifecycle:TrainingRun.train",
           "CNNBENCH_PAUSED_FILE": str(paused)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnbench", "train", "logger=[tensorboard,mlflow]",
         f"logger.mlflow.tracking_uri={server}", "logger.mlflow.experiment=interrupted",
         "hydra.run.dir=run", *TINY], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, preexec_fn=stop_signals_as_in_a_terminal)
    deadline = time.monotonic() + 120
    while not paused.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    _, [run] = _runs(server, "interrupted")
    assert run.data.tags["status"] == "interrupted"
    assert run.info.status == "KILLED"


def test_a_server_that_goes_down_mid_run_costs_one_warning_and_the_run_completes(tmp_path):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(SERVER_DIES)
    with mlflow_server(tmp_path / "server") as (uri, server_proc):
        proc = run_cli("train", "logger=[tensorboard,mlflow]",
                       f"logger.mlflow.tracking_uri={uri}", "hydra.run.dir=run",
                       "evaluation.enabled=false", *TINY, cwd=tmp_path,
                       env={"PYTHONPATH": str(tmp_path / "hook"),
                            "SERVER_PGID": str(server_proc.pid)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed" and record["epochs_run"] == 2
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "MLflow stopped logging this run" in warnings[0], proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_logger_list_without_tensorboard_writes_no_events(server, tmp_path):
    run_cli("train", "logger=[mlflow]", f"logger.mlflow.tracking_uri={server}",
            "logger.mlflow.experiment=no_tensorboard", "hydra.run.dir=run",
            "evaluation.enabled=false", *TINY, cwd=tmp_path, check=True)
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "history.csv").is_file()
    _, [run] = _runs(server, "no_tensorboard")
    assert run.data.tags["status"] == "completed"
