"""trainer.target_acc: a run stops at the epoch that reaches it and records the time it took."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import cnnbench.engine.loop as train_module
from cnnbench.errors import UserError
from cnnbench.run.checkpoint import load_checkpoint
from cnnbench.run.lifecycle import TrainingRun
from cnnbench.run.resume import NothingToResume, resume_arguments
from cnnbench.settings.trainer import TrainerSettings

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.progress=false", "trainer.device=cpu",
        "evaluation.plots=false", "evaluation.table=false", "evaluation.shifts=[]"]
CHOICES = {"model": "lenet", "dataset": "synthetic", "optimizer": "adam", "scheduler": "none",
           "augmentation": "none"}


def fit(compose, run_dir: Path, *overrides: str) -> dict:
    return TrainingRun(compose([*TINY, *overrides]), run_dir, CHOICES).execute()


def history(run_dir: Path) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "history.csv")))


@pytest.fixture
def scripted_accuracy(monkeypatch):
    """Validation accuracy after epoch 1, 2, ... as the test lists it (the loss stays real)."""
    real = train_module.evaluate

    def script(*accuracies: float) -> None:
        remaining = list(accuracies)

        def evaluate(*args, **kwargs):
            return {**real(*args, **kwargs), "acc": remaining.pop(0)}

        monkeypatch.setattr(train_module, "evaluate", evaluate)

    return script


def test_reaching_the_target_stops_at_that_epoch(compose, tmp_path):
    metrics = fit(compose, tmp_path, "trainer.epochs=8", "trainer.target_acc=0.3")
    reached = metrics["epochs_to_target"]
    assert isinstance(reached, int) and 1 <= reached < 8
    assert metrics["status"] == "completed" and metrics["epochs_run"] == reached
    assert metrics["stopped_early"] is True and "reached the target" in metrics["reason"]
    assert metrics["target_acc"] == 0.3 and metrics["target_metric"] == "val/acc"
    assert 0 < metrics["time_to_target_s"] <= metrics["train_seconds"]
    accs = [float(r["val/acc"]) for r in history(tmp_path)]
    assert len(accs) == reached and accs[-1] >= 0.3 and all(a < 0.3 for a in accs[:-1])
    assert "test/acc" in metrics  # the test phase still runs
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["time_to_target_s"] == metrics["time_to_target_s"]


def test_a_target_never_reached_runs_every_epoch_with_nulls(compose, tmp_path):
    metrics = fit(compose, tmp_path, "trainer.epochs=2", "trainer.target_acc=1.0")
    assert metrics["epochs_run"] == 2 and metrics["stopped_early"] is False
    assert metrics["target_acc"] == 1.0 and metrics["target_metric"] == "val/acc"
    assert metrics["time_to_target_s"] is None and metrics["epochs_to_target"] is None
    assert metrics["reason"] is None
    # and a CPU run has no GPU energy reading, with the reason
    assert metrics["energy_joules"] is None
    assert metrics["energy_note"] == "CPU run: no GPU energy counter"


def test_without_a_target_the_keys_are_null(compose, tmp_path):
    metrics = fit(compose, tmp_path, "trainer.epochs=1")
    assert {k: metrics[k] for k in ("target_acc", "target_metric", "time_to_target_s",
                                    "epochs_to_target")} == dict.fromkeys(
        ("target_acc", "target_metric", "time_to_target_s", "epochs_to_target"))


def test_without_validation_the_target_is_checked_on_the_test_set(tmp_path, cli):
    proc = cli("train", *TINY, "trainer.epochs=4", "trainer.val_split=0",
               "trainer.target_acc=0.15", cwd=tmp_path, check=True)
    text = " ".join(proc.stdout.split())
    assert ("trainer.target_acc=0.15 is checked on the test set (test/acc after every epoch): "
            "trainer.val_split=0 leaves no validation split.") in text
    assert "target: reached the target test/acc >= 0.15" in text
    run = next((tmp_path / "outputs" / "runs").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["target_metric"] == "test/acc" and metrics["val_size"] == 0
    assert metrics["epochs_to_target"] == metrics["epochs_run"] < 4
    assert metrics["time_to_target_s"] > 0


@pytest.mark.parametrize("value,expected", [
    (99, "trainer.target_acc=99 is not valid: it must be the accuracy to reach as a fraction in "
         "(0, 1], e.g. trainer.target_acc=0.99, or null. It is a fraction, not a percentage: "
         "did you mean trainer.target_acc=0.99?"),
    (0, "trainer.target_acc=0 is not valid"), (1.5, "trainer.target_acc=1.5 is not valid"),
    ("high", "trainer.target_acc='high' is not valid: it must be a number or null"),
    (True, "trainer.target_acc=True is not valid"),
])
def test_bad_targets_are_one_paragraph(value, expected):
    with pytest.raises(UserError) as err:
        TrainerSettings.from_config({"target_acc": value})
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bad_target_on_the_command_line(tmp_path, cli):
    proc = cli("train", *TINY, "trainer.target_acc=99", cwd=tmp_path)
    text = (proc.stdout + proc.stderr).strip()
    assert proc.returncode != 0 and "Traceback" not in text
    assert text.startswith("error:") and "did you mean trainer.target_acc=0.99?" in \
        " ".join(text.split())


def test_time_to_target_adds_up_across_a_resume(compose, tmp_path, scripted_accuracy):
    scripted_accuracy(0.2, 0.4, 0.9)
    first = fit(compose, tmp_path, "trainer.epochs=1", "trainer.target_acc=0.8")
    assert first["epochs_to_target"] is None
    before = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["timed_seconds"]
    assert before > 0
    last = tmp_path / "checkpoints" / "last.pt"
    metrics = fit(compose, tmp_path, "trainer.epochs=3", "trainer.target_acc=0.8",
                  f"trainer.resume={last}")
    assert metrics["epochs_to_target"] == 3 and metrics["epochs_run"] == 3
    after = load_checkpoint(last)["timed_seconds"]
    assert before < metrics["time_to_target_s"] == after


def test_resume_after_the_target_tests_or_trains_past_it(compose, tmp_path, scripted_accuracy):
    scripted_accuracy(0.2, 0.9, 0.5, 0.6, 0.7)
    target = ["trainer.target_acc=0.8"]
    first = fit(compose, tmp_path, "trainer.epochs=4", *target)
    assert first["epochs_to_target"] == 2 and first["epochs_run"] == 2
    last = tmp_path / "checkpoints" / "last.pt"
    # stopped during its test phase: the resume has nothing left to train, only the test
    (tmp_path / "metrics.json").write_text(json.dumps({**first, "status": "interrupted"}))
    again = fit(compose, tmp_path, "trainer.epochs=4", *target, f"trainer.resume={last}")
    assert again["epochs_run"] == 2 and again["stopped_early"] is True
    assert again["time_to_target_s"] == first["time_to_target_s"] and len(history(tmp_path)) == 2
    # completed: asking for no more epochs than it planned is nothing to do
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("[]\n")
    with pytest.raises(NothingToResume, match="stopped at its target .* after epoch 2 of the 4"):
        resume_arguments([f"trainer.resume={tmp_path}", "trainer.epochs=3"])
    # more epochs than planned: they train, and the target (reached in epoch 2) stops nothing
    longer = fit(compose, tmp_path, "trainer.epochs=5", *target, f"trainer.resume={last}")
    assert longer["epochs_run"] == 5 and longer["stopped_early"] is False
    assert longer["epochs_to_target"] == 2
    assert longer["time_to_target_s"] == first["time_to_target_s"]
    assert [int(r["epoch"]) for r in history(tmp_path)] == [1, 2, 3, 4, 5]
