"""No command gives NaN as a result: real `cnnbench` processes on a run that diverges in its last
step, on one whose divergence leaves an earlier checkpoint, and on a trained run whose weights
were made NaN afterwards."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from helpers import make_run, trained_run, write_pictures

# one batch per epoch, no validation split: a divergence in the last step has nothing after it
# but the test
ONE_BATCH = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=64",
             "trainer.batch_size=64", "trainer.val_split=0", "trainer.device=cpu",
             "trainer.progress=false", "optimizer=sgd", "evaluation.plots=false"]
TINY = ["model=lenet", "dataset=synthetic", "dataset.train_size=128", "dataset.test_size=32",
        "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false", "hydra.run.dir=run"]
# a number printed as Python prints a float that is not finite (the words "NaN or infinite"
# in a message are not results)
PRINTED_NAN = re.compile(r"(?<![\w.])[-+]?(nan|inf|Infinity)(?![\w])")


def strict_json(path: Path):
    """The file parsed as strict JSON: NaN and Infinity are refused."""
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def assert_no_nan_result(proc, folder: Path) -> None:
    """Neither the output of `proc` nor a JSON, CSV or Markdown file under `folder` holds a
    number that is NaN or infinite; every JSON file is strict."""
    assert not PRINTED_NAN.search(proc.stdout + proc.stderr), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for path in folder.rglob("*.json"):
        strict_json(path)
    for path in [*folder.rglob("*.csv"), *folder.rglob("*.md")]:
        assert not PRINTED_NAN.search(path.read_text()), path
        if path.suffix == ".csv":
            cells = [c for row in csv.reader(path.open()) for c in row]
            assert "NaN" not in cells, path


def one_paragraph_error(proc, *phrases: str) -> str:
    """The command failed with exit 2 and one `error:` paragraph holding every phrase."""
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.count("error:") == 1 and "Traceback" not in proc.stdout + proc.stderr
    for phrase in phrases:
        assert phrase in text, text
    return text


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """(process, run directory) of a run that diverges in its last and only step."""
    cwd = tmp_path_factory.mktemp("diverged")
    proc = run_cli("train", *ONE_BATCH, "trainer.epochs=1", "optimizer.lr=1e12",
                   "hydra.run.dir=runs/diverged", cwd=cwd)
    return proc, cwd / "runs" / "diverged"


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """A copy of a tiny trained run whose last.pt and best.pt hold a NaN weight."""
    run = tmp_path_factory.mktemp("nan") / "run"
    shutil.copytree(trained_run(tmp_path_factory, TINY), run)
    for name in ("last.pt", "best.pt"):
        path = run / "checkpoints" / name
        payload = torch.load(path, weights_only=True)
        first = next(iter(payload["model"]))
        payload["model"][first].view(-1)[0] = float("nan")
        torch.save(payload, path)
    return run


def test_a_run_that_diverges_in_its_last_step_ends_diverged_with_strict_metrics(diverged):
    proc, run = diverged
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the exit code of every divergence
    text = " ".join(proc.stdout.split())
    assert "Training diverged in epoch 1" in text and "learning rate" in text
    assert "no checkpoint with finite weights" in text
    metrics = strict_json(run / "metrics.json")
    assert metrics["status"] == "diverged" and metrics["epochs_run"] == 0
    assert "test/acc" not in metrics and "test/loss" not in metrics
    assert not (run / "checkpoints" / "last.pt").exists()


def test_compare_does_not_rank_a_diverged_run_or_one_with_nan_metrics(diverged, tmp_path):
    _, run = diverged
    runs = run.parent
    run_cli("train", *ONE_BATCH, "trainer.epochs=1", "optimizer.lr=0.01",
            "hydra.run.dir=runs/good", cwd=runs.parent, check=True)
    make_run(runs, "older_nan", 0.99, 7, **{"test/loss": float("nan")})  # bare NaN, best acc
    proc = run_cli("compare", str(runs), "runs=true", f"out={tmp_path / 'cmp'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranked = list(csv.DictReader((tmp_path / "cmp" / "comparison_runs.csv").open()))
    assert [r["run"] for r in ranked] == ["good", "diverged", "older_nan"]
    assert ranked[2]["test/loss"] == "" and ranked[2]["test/acc"] == "0.99"
    groups = {g["left_out_why"]: g["n"] for g in
              csv.DictReader((tmp_path / "cmp" / "comparison.csv").open())}
    assert groups == {"": "1", "diverged (seed 42)": "0",
                      "completed, test/loss not finite (seed 7)": "0"}
    assert "with metrics that are NaN or infinite" in " ".join(proc.stdout.split())


def test_the_last_good_checkpoint_named_after_a_divergence_is_finite(tmp_path):
    # lr 0.01 for the first step, then 7.5e11: epoch 2's only step diverges
    proc = run_cli("train", *ONE_BATCH, "trainer.epochs=3", "optimizer.lr=1e12",
                   "scheduler=onecycle", "scheduler.div_factor=1e14", "scheduler.pct_start=0.5",
                   "hydra.run.dir=run", cwd=tmp_path)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 1 and "Training diverged in epoch 2" in text, text
    named = re.search(r"The last good checkpoint \(finite weights\) is (\S+?\.pt)", text)
    assert named, text
    payload = torch.load(named.group(1), weights_only=True)
    assert payload["epoch"] == 1
    assert all(torch.isfinite(w).all() for w in payload["model"].values())
    assert strict_json(tmp_path / "run" / "metrics.json")["epochs_run"] == 1
    usable = run_cli("eval", f"checkpoint={named.group(1)}", "evaluation.plots=false",
                     f"out={tmp_path / 'eval'}", cwd=tmp_path)
    assert usable.returncode == 0, usable.stdout + usable.stderr


def test_export_refuses_a_checkpoint_whose_weights_are_nan(nan_run, tmp_path):
    proc = run_cli("export", f"checkpoint={nan_run}", "format=torchscript",
                   f"out={tmp_path / 'model.pt'}", cwd=tmp_path)
    one_paragraph_error(proc, "holds weights that are NaN or infinite", "diverged")
    assert not (tmp_path / "model.pt").exists()


def test_predict_refuses_a_checkpoint_whose_weights_are_nan(nan_run, tmp_path):
    write_pictures(tmp_path / "pictures")
    proc = run_cli("predict", f"checkpoint={nan_run}", f"inputs={tmp_path / 'pictures'}",
                   f"out={tmp_path / 'out'}", cwd=tmp_path)
    one_paragraph_error(proc, "holds weights that are NaN or infinite", "optimizer.lr")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "eval", "predict", "export", "compare"])
def test_no_command_writes_or_prints_nan_as_a_result(command, diverged, nan_run, tmp_path):
    """Each command on what holds NaN: the diverged run, a checkpoint of NaN weights, and for
    compare an older run whose metrics.json has a bare Infinity; everything it writes goes to
    `work`, which is checked with its output."""
    work, given = tmp_path / "work", tmp_path / "given"
    work.mkdir()
    write_pictures(given / "pictures")
    make_run(given / "runs", "older_inf", 0.9, 1, **{"test/loss": float("inf")})
    shutil.copytree(diverged[1], given / "runs" / "diverged")
    args = {"eval": [f"checkpoint={nan_run}", f"out={work / 'eval'}"],
            "predict": [f"checkpoint={nan_run}", f"inputs={given / 'pictures'}"],
            "export": [f"checkpoint={nan_run}", f"out={work / 'model.onnx'}"],
            "compare": [str(given / "runs"), "runs=true", f"out={work / 'cmp'}"]}
    if command == "train":
        proc, work = diverged[0], diverged[1]
    else:
        proc = run_cli(command, *args[command], cwd=work)
        assert proc.returncode == (0 if command == "compare" else 2), proc.stdout + proc.stderr
    assert_no_nan_result(proc, work)


def test_lr_find_writes_an_overflowed_loss_as_an_empty_cell(tmp_path):
    proc = run_cli("lr-find", "dataset=synthetic", "dataset.train_size=256", "model=mlp",
                   "trainer.device=cpu", "start_lr=1e30", "end_lr=1e38", "num_steps=10",
                   "out=lrf", cwd=tmp_path)
    assert proc.returncode in (0, 2), proc.stdout + proc.stderr
    rows = list(csv.reader((tmp_path / "lrf" / "lr_find.csv").open()))
    assert rows[0] == ["lr", "loss", "smoothed_loss"] and len(rows) > 2
    assert any(row[1] == "" for row in rows[1:]), rows  # the overflow happened and is empty
    assert_no_nan_result(proc, tmp_path / "lrf")


def test_eval_of_finite_weights_that_overflow_without_amp_does_not_advise_amp_off(
        tmp_path_factory, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run(tmp_path_factory, TINY), run)
    last = run / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    for weight in [k for k in payload["model"] if k.endswith("weight")][-2:]:
        payload["model"][weight] *= 1e30  # finite weights, logits beyond float32
        assert torch.isfinite(payload["model"][weight]).all()
    torch.save(payload, last)
    proc = run_cli("eval", f"checkpoint={last}", "trainer.device=cpu", "out=ev", cwd=tmp_path)
    text = one_paragraph_error(proc, "cannot be evaluated", "evaluate an earlier checkpoint")
    assert "amp=off" not in text
