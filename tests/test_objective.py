"""What a sweep optimizes is explicit, goes the right way, and a refused command leaves no run."""
from __future__ import annotations

import pytest
import yaml

from cnnbench import rundir
from cnnbench.settings.objective import (
    SweepError,
    check_sweeper,
    objective_of,
    recorded_value,
)

TINY = ["dataset=synthetic", "trainer.device=cpu", "trainer.epochs=1", "dataset.train_size=64",
        "dataset.test_size=32", "trainer.progress=false"]


def test_each_metric_knows_its_direction_and_reads_its_value():
    acc, loss = objective_of("val/acc"), objective_of("test/loss")
    assert (acc.direction, loss.direction) == ("maximize", "minimize")
    assert acc.value({"best_val_acc": 0.75, "test/acc": 0.5}) == 0.75
    assert loss.value({"test/loss": 1}) == 1.0 and loss.value({}) is None
    with pytest.raises(SweepError, match="optimized_metric='val_acc' is not a metric"):
        objective_of("val_acc")


def test_a_completed_run_gives_back_the_value_its_optimized_metric_recorded():
    metrics = {"best_val_acc": 0.9, "test/loss": 0.25, "status": "completed"}
    assert recorded_value("test/loss", metrics) == 0.25
    assert recorded_value("val/acc", metrics) == 0.9
    assert recorded_value("test/acc", metrics) is None  # not recorded
    assert recorded_value("val_acc", metrics) is None   # not a metric: no error mid-sweep


def test_a_sweeper_going_the_wrong_way_is_refused():
    check_sweeper(objective_of("val/acc"), {"direction": "maximize"}, 0.1)
    check_sweeper(objective_of("val/acc"), {}, 0.1)  # the basic sweeper optimizes nothing
    with pytest.raises(SweepError, match="hydra.sweeper.direction=maximize"):
        check_sweeper(objective_of("val/acc"), {"direction": "minimize"}, 0.1)
    with pytest.raises(SweepError, match="hydra.sweeper.direction=minimize"):
        check_sweeper(objective_of("test/loss"), {"direction": "maximize"}, 0.1)
    with pytest.raises(SweepError, match="one value per job"):
        check_sweeper(objective_of("test/loss"), {"direction": ["minimize", "maximize"]}, 0.1)
    with pytest.raises(SweepError, match="needs a validation set"):
        check_sweeper(objective_of("val/acc"), {"direction": "maximize"}, 0.0)


def test_optuna_minimizing_an_accuracy_is_refused_before_anything_runs(cli, tmp_path):
    proc = cli("train", "-m", "hydra/sweeper=optuna", "optimizer.lr=interval(0.001,0.01)",
               "hydra.sweeper.n_trials=2", *TINY, cwd=tmp_path)
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert "would minimize optimized_metric=val/acc" in text
    assert not (tmp_path / "outputs").exists()


def test_optuna_returns_the_metric_it_was_told_to(cli, tmp_path):
    sweep = tmp_path / "sweep"
    cli("train", "-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=minimize",
        "optimized_metric=test/loss", "optimizer.lr=interval(0.001,0.01)",
        "hydra.sweeper.n_trials=2", *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=True)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"]
    losses = [rundir.read_metrics(d)["test/loss"] for d in rundir.find_run_dirs(sweep)]
    assert len(losses) == 2 and best == pytest.approx(min(losses))


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]],
                         ids=["default-launcher", "parallel-launcher"])
def test_a_skipped_job_returns_its_optimized_metric_to_the_sweeper(tmp_path, cli, launcher):
    args = ["train", "-m", *launcher, "hydra/sweeper=optuna", "hydra.sweeper.direction=minimize",
            "hydra.sweeper.sampler.seed=1", "hydra.sweeper.n_trials=2",
            "optimized_metric=test/loss", "optimizer.lr=interval(0.001,0.01)", *TINY, "model=mlp",
            "evaluation.plots=false",
            "hydra.sweep.dir=sw"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    sweep = tmp_path / "sw"
    results = sweep / "optimization_results.yaml"
    results.unlink()
    again = cli(*args, cwd=tmp_path)  # the same trials: both jobs completed, both skipped
    assert again.returncode == 0, again.stdout + again.stderr
    assert "this time: skipped 2 completed jobs" in " ".join(again.stdout.split())
    losses = [rundir.read_metrics(job)["test/loss"] for job in rundir.find_run_dirs(sweep)]
    accuracies = [rundir.read_metrics(job)["best_val_acc"] for job in rundir.find_run_dirs(sweep)]
    assert len(losses) == 2 and min(losses) != min(accuracies)
    assert yaml.safe_load(results.read_text())["best_value"] == pytest.approx(min(losses))


def test_a_mistyped_run_leaves_no_directory_behind(cli, tmp_path):
    proc = cli("train", *TINY, "trainer.device=cuda", cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2 and "trainer.device=cuda" in proc.stdout + proc.stderr
    assert rundir.find_run_dirs(tmp_path / "outputs") == []


def test_only_a_directory_holding_nothing_but_its_start_is_discarded(tmp_path):
    bare, used = tmp_path / "bare", tmp_path / "used"
    for run in (bare, used):
        (run / rundir.HYDRA_DIR).mkdir(parents=True)
        (run / rundir.LOG_FILE).write_text("")
        (run / rundir.METRICS_FILE).write_text("{}")
    (used / rundir.HISTORY_FILE).write_text("epoch\n1\n")
    assert rundir.discard_unstarted(bare) and not bare.exists()
    assert not rundir.discard_unstarted(used) and (used / rundir.HISTORY_FILE).exists()


@pytest.mark.parametrize("args", [["hydra/launcher=nope"], ["-m", "hydra/sweeper=nope", "model=mlp,lenet"]])
def test_a_mistake_hydra_finds_is_one_paragraph(cli, tmp_path, args):
    proc = cli("train", *args, cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1 and "Could not find" in text and "nope" in text
    assert rundir.find_run_dirs(tmp_path / "outputs") == []
