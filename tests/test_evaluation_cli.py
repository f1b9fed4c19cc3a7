"""End to end: a real 2-job sweep, then `compare`, `eval` and a real TensorBoard server on it."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import assert_png

SMALL = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
         "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """`cnnbench train -m model=mlp,lenet` on small synthetic data; returns the sweep dir."""
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("sweep")
    proc = run_cli("train", "-m", "model=mlp,lenet", *SMALL, cwd=cwd, check=True)
    # a sweep's job ends with one line (its per-class results are in its metrics.json)
    assert "[job 1] lenet on synthetic: completed, test accuracy" in proc.stdout
    (sweep_dir,) = (cwd / "outputs" / "multirun").iterdir()
    return sweep_dir


def job(sweep: Path, model: str) -> Path:
    (found,) = [p for p in sweep.iterdir() if p.is_dir() and f"model={model}" in p.name]
    return found


@pytest.mark.parametrize("model", ["mlp", "lenet"])
def test_training_writes_the_evaluation(sweep, model):
    run = job(sweep, model)
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "completed" and m["model"] == model
    for key in ("test/loss", "test/acc", "params", "train_seconds", "images_per_s"):
        assert isinstance(m[key], (int, float))  # the keys that were there before stay
    for key in ("test/macro_precision", "test/macro_recall", "test/macro_f1", "shift/2px",
                "shift/4px"):
        assert 0.0 <= m[key] <= 1.0, key
    assert "test/top5" not in m  # 10 classes
    assert [row["class"] for row in m["per_class"]] == [f"class_{i}" for i in range(10)]
    assert sum(row["support"] for row in m["per_class"]) == 128
    cm = m["confusion_matrix"]
    assert len(cm) == 10 and sum(map(sum, cm)) == 128
    assert sum(cm[i][i] for i in range(10)) / 128 == pytest.approx(m["test/acc"])
    assert len(m["misclassified"]) == min(36, round(128 * (1 - m["test/acc"])))
    assert_png(run / "confusion_matrix.png", 500, 500)
    if m["misclassified"]:
        assert_png(run / "misclassified.png", 500, 250)  # one mistake: one row


def test_compare_cli_on_a_real_sweep(cli, sweep):
    proc = cli("compare", str(sweep), cwd=sweep.parent, env={"COLUMNS": "150"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()
            if line.startswith((" mlp ", " lenet "))]  # one group per model: model, seeds, n
    assert len(rows) == 2 and {"mlp", "lenet"} == {r[0] for r in rows}
    assert [r[1:3] for r in rows] == [["42", "1"], ["42", "1"]]
    accs = [json.loads((job(sweep, m) / "metrics.json").read_text())["test/acc"]
            for m in ("mlp", "lenet")]
    assert f"{100 * max(accs):.2f}%" == rows[0][3] and rows[0][4] == "best"  # best first
    assert "n=1: no test" in " ".join(rows[1])
    for name in ("comparison.csv", "comparison_runs.csv", "comparison.md"):
        assert (sweep / name).stat().st_size > 100
    assert_png(sweep / "comparison.png")
    assert_png(sweep / "curves.png")


def test_eval_cli_on_a_checkpoint(cli, sweep, tmp_path):
    run = job(sweep, "lenet")
    trained = json.loads((run / "metrics.json").read_text())
    proc = cli("eval", f"checkpoint={run / 'checkpoints' / 'best.pt'}", "evaluation.shifts=[1]",
               "evaluation.misclassified=4", "trainer.device=cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (out,) = (tmp_path / "outputs" / "eval").iterdir()
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "completed" and m["kind"] == "eval" and m["model"] == "lenet"
    assert m["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)  # the same weights
    assert m["confusion_matrix"] == trained["confusion_matrix"]
    assert "shift/1px" in m and "shift/2px" not in m and len(m["misclassified"]) <= 4
    assert_png(out / "confusion_matrix.png", 500, 500)
    assert any(out.glob("events.out.tfevents.*")) and (out / "eval_config.yaml").is_file()


def test_eval_refuses_what_cannot_work(sweep, tmp_path, monkeypatch, capsys):
    """In-process (a subprocess per case would cost seconds each): clear errors, no run dir."""
    from cnnbench.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    run = job(sweep, "lenet")
    cases = {("dataset.channels=3",): "do not fit a lenet built for synthetic (3x28x28",
             ("model=mlp",): "cannot be changed by `cnnbench eval`",
             ("evaluation.shifts=[0]",): "evaluation.shifts=[0] is not valid",
             ("dataset=imagenet",): "dataset=imagenet is not a dataset; datasets: cifar10",
             ("oops",): "is not a key=value argument"}
    for extra, message in cases.items():
        assert main(["eval", f"checkpoint={run}", *extra]) == 2
        assert message in " ".join(capsys.readouterr().out.split()), extra
    assert main(["eval", f"checkpoint={tmp_path / 'nothing.pt'}"]) == 2
    assert "No checkpoint at" in capsys.readouterr().out
    assert main(["eval"]) == 2
    assert not (tmp_path / "outputs").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_tensorboard_server_shows_every_run_and_its_hparams(sweep, tmp_path):
    """The real `tensorboard` server on the sweep's outputs/, read back through its HTTP API."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "tensorboard.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep.parents[1]),
         "--port", str(port), "--host", "127.0.0.1", "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, tags = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            try:
                tags = fetch(f"{base}/data/plugin/scalars/tags")
                if len(tags) == 2 and all("test/acc" in t for t in tags.values()):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert server.poll() is None, (tmp_path / "tensorboard.log").read_text()
            time.sleep(0.5)
        assert len(tags) == 2, f"runs seen: {list(tags)}"
        for run, run_tags in tags.items():
            assert (sweep.parents[1] / run / "metrics.json").is_file()  # named by its directory
            assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "test/loss",
                    "test/acc", "test/macro_f1", "shift/2px", "shift/4px"} <= set(run_tags), run
        images = fetch(f"{base}/data/plugin/images/tags")
        assert all({"test/confusion_matrix", "test/misclassified"} <= set(t)
                   for t in images.values()) and len(images) == 2

        experiment = fetch(f"{base}/data/plugin/hparams/experiment", {"experimentName": ""})
        infos = {h["name"]: h for h in experiment["hparamInfos"]}
        assert {"model", "dataset", "optimizer", "lr", "batch_size", "augmentation", "scheduler",
                "epochs"} <= set(infos)
        # shown: what the sweep varies (the model) and what identifies any run
        shown = {"model", "dataset", "optimizer", "scheduler", "seed"}
        assert {k for k in infos if infos[k].get("differs")} == shown
        metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
        # the dashboard shows the first five metric columns by default
        assert metrics[:5] == ["test/acc", "test/loss", "test/macro_f1", "shift/2px", "shift/4px"]
        assert {"val/acc", "train/loss"} <= set(metrics)

        groups = fetch(f"{base}/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                "STATUS_RUNNING"]})["sessionGroups"]
        assert len(groups) == 2
        for group in groups:
            hp = group["hparams"]
            run_dir = sweep.parents[1] / group["name"]
            m = json.loads((run_dir / "metrics.json").read_text())
            assert hp["model"] == m["model"] and hp["dataset"] == "synthetic"
            assert hp["optimizer"] == "adam" and hp["lr"] == pytest.approx(0.001)
            assert hp["batch_size"] == "128" and hp["epochs"] == "1"  # shown as 128, not 128.00
            values = {v["name"]["tag"]: v["value"] for v in group["metricValues"]}
            assert values["test/acc"] == pytest.approx(m["test/acc"])
            assert values["shift/4px"] == pytest.approx(m["shift/4px"])
        assert {g["hparams"]["model"] for g in groups} == {"mlp", "lenet"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
