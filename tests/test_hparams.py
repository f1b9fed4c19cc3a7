"""Which options a sweep varies (from its multirun.yaml) and the order of the metric columns."""
from __future__ import annotations

from cnnbench.run.hparams import metric_columns, shown_options, swept_options

OPTIONS = ["model", "dataset", "optimizer", "lr", "scheduler", "augmentation", "batch_size",
           "epochs", "seed"]


def sweep_job(tmp_path, *task: str):
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n" + "".join(f"    - {t}\n" for t in task))
    job = tmp_path / "0_job"
    job.mkdir()
    return job


def test_swept_options_come_from_the_sweep_overrides(tmp_path):
    job = sweep_job(tmp_path, "model=mlp,lenet", "trainer.epochs=2", "dataset=mnist",
                    "trainer.batch_size=64,128", "trainer.device=cpu,cuda")
    assert swept_options(job, OPTIONS) == {"model", "batch_size"}


def test_a_swept_optimizer_changes_the_learning_rate_too(tmp_path):
    job = sweep_job(tmp_path, "optimizer=sgd,adam", "optimizer.momentum=0.9")
    assert swept_options(job, OPTIONS) == {"optimizer", "lr"}
    (tmp_path / "lr").mkdir()
    job = sweep_job(tmp_path / "lr", "optimizer.lr=range(0.1,0.5,0.1)")
    assert swept_options(job, OPTIONS) == {"lr"}


def test_no_sweep_no_differences(tmp_path):
    assert swept_options(tmp_path / "run", OPTIONS) == set()
    job = sweep_job(tmp_path, "+experiment=a,b")
    assert swept_options(job, OPTIONS) == set(OPTIONS)  # a preset may change anything


def test_metric_columns_start_with_the_test_results():
    tags = ["test/acc", "test/loss", "test/macro_precision", "test/macro_recall", "test/macro_f1",
            "shift/2px", "shift/4px", "test/top5"]
    assert metric_columns(tags) == [
        "test/acc", "test/loss", "test/macro_f1", "shift/2px", "shift/4px",
        "test/macro_precision", "test/macro_recall", "test/top5",
        "val/acc", "val/loss", "train/acc", "train/loss"]


def test_identifying_options_are_always_shown_and_whole_numbers_as_text(tmp_path):
    options = {"lr": 0.01, "augmentation": "none", "batch_size": 128, "model": "mlp",
               "dataset": "mnist", "optimizer": "adam", "scheduler": "cosine", "epochs": 10,
               "seed": 42}
    values, marked = shown_options(options, tmp_path / "run")  # a single run: nothing swept
    assert marked == {"model", "dataset", "optimizer", "scheduler", "seed"}
    assert list(values)[:5] == ["model", "dataset", "optimizer", "scheduler", "seed"]
    assert values["batch_size"] == "128" and values["seed"] == "42" and values["lr"] == 0.01
