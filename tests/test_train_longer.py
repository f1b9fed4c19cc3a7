"""Advice to train a completed run longer: the resume that finds nothing to do and the refusal of
a new run in that run's folder name one command, and that command trains the run on to its end,
however the run ended (all its epochs, its target, early stopping)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

SMALL = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
         "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
         "evaluation.plots=false", "model=mlp", "optimizer=sgd", "trainer.val_split=0.25"]
# (how the run ends, its own overrides, the epochs it trains, the advice, the epochs it then has)
ENDINGS = {
    "all_epochs": (["trainer.epochs=2"], 2, "trainer.epochs=4", 4),
    "target": (["trainer.epochs=3", "trainer.target_acc=0.01"], 1, "trainer.epochs=6", 6),
    # a learning rate of 1e-12 changes nothing: no epoch improves on the first one
    "early_stopping": (["trainer.epochs=5", "optimizer.lr=1e-12",
                        "trainer.early_stopping.patience=1"], 2,
                       "trainer.epochs=5 trainer.early_stopping.patience=null", 5),
}


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def advice(text: str, lead: str) -> str:
    return " ".join(text.split()).split(lead, 1)[1].split(" ; ")[0].strip()


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_completed_run_is_advised_one_command_that_trains_it_on_to_its_end(tmp_path, ending):
    own, trained, expected, total = ENDINGS[ending]
    run_cli("train", *SMALL, *own, "hydra.run.dir=run", cwd=tmp_path, check=True)
    run = tmp_path / "run"
    before = metrics(run)
    assert before["status"] == "completed" and before["epochs_run"] == trained

    nothing = run_cli("train", f"trainer.resume={run}", cwd=tmp_path)
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr
    assert "nothing to do" in nothing.stdout
    refused = run_cli("train", *SMALL, "hydra.run.dir=run", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert advice(nothing.stdout, "To train it longer:") == \
        f"cnnbench train trainer.resume={run} {expected}"
    command = advice(refused.stdout + refused.stderr, "train it longer with:")
    assert command == f"cnnbench train trainer.resume=run {expected}"  # the path as typed

    env = {**os.environ, "COLUMNS": "120",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    more = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert more.returncode == 0, more.stdout + more.stderr
    after = metrics(run)
    assert after["status"] == "completed" and after["epochs_run"] == total
    assert after["resumed_from_epoch"] == trained
    with open(run / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(1, total + 1))
