"""`published`: a preset's published number, copied into metrics.json from the start."""
from __future__ import annotations

import json

import pytest

from cnnbench.errors import UserError
from cnnbench.run.lifecycle import TrainingRun

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.progress=false", "trainer.device=cpu",
        "evaluation.plots=false", "evaluation.table=false", "evaluation.shifts=[]"]
CHOICES = {"model": "lenet", "dataset": "synthetic"}
BLOCK = "published={value:0.988,metric:test/acc,source:'course notebook 004, test accuracy'}"


def started(compose, tmp_path, *overrides: str) -> dict:
    """The metrics a run starts with (nothing trained)."""
    return TrainingRun(compose([*TINY, *overrides]), tmp_path, CHOICES).metrics


def test_no_published_number_is_null(compose, tmp_path):
    assert compose([]).published is None
    assert started(compose, tmp_path)["published"] is None


def test_the_block_is_copied_as_a_plain_dict(compose, tmp_path):
    assert started(compose, tmp_path, BLOCK)["published"] == {
        "value": 0.988, "metric": "test/acc", "source": "course notebook 004, test accuracy"}
    one_by_one = ["+published.value=1", "+published.metric=val/acc", "+published.source=x"]
    assert started(compose, tmp_path, *one_by_one)["published"] == {
        "value": 1.0, "metric": "val/acc", "source": "x"}


@pytest.mark.parametrize("overrides,expected", [
    (["+published.value=0.9"], "The published block is not valid: it lacks metric, source."),
    ([BLOCK, "+published.year=2020"], "The published block is not valid: year is not known."),
    (["published={value:98.8,metric:test/acc,source:x}"],
     "published.value=98.8 is not valid: it must be the published number as a fraction in "
     "(0, 1], e.g. published.value=0.99. It is a fraction, not a percentage: did you mean "
     "published.value=0.988?"),
    (["published={value:high,metric:test/acc,source:x}"], "published.value='high' is not valid"),
    (["published={value:null,metric:test/acc,source:x}"], "published.value=None is not valid"),
    (["published={value:0.9,metric:3,source:x}"], "published.metric=3 is not valid"),
    (["published={value:0.9,metric:test/acc,source:''}"], "published.source='' is not valid"),
    (["published=0.988"], "published=0.988 is not valid: it must be a group of three keys"),
])
def test_anything_else_is_one_paragraph(compose, tmp_path, overrides, expected):
    with pytest.raises(UserError) as err:
        started(compose, tmp_path, *overrides)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_a_run_writes_it_into_metrics_json(tmp_path, cli):
    cli("train", *TINY, "trainer.epochs=1", BLOCK, cwd=tmp_path, check=True)
    run = next((tmp_path / "outputs" / "runs").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["published"] == {"value": 0.988, "metric": "test/acc",
                                    "source": "course notebook 004, test accuracy"}


def test_a_presets_block_wins_over_the_default(compose, tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "with_number.yaml").write_text(
        "# @package _global_\npublished:\n  value: 0.988\n  metric: test/acc\n"
        "  source: \"course notebook 004 (LeNet-5 in PyTorch), test accuracy after 10 epochs\"\n")
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "experiment=with_number"])
    assert cfg.published.value == 0.988 and cfg.published.metric == "test/acc"


def test_a_run_given_the_block_on_the_command_line_can_be_resumed(tmp_path):
    from cnnbench.settings.resume_policy import vet_override

    assert vet_override(BLOCK, tmp_path / "overrides.yaml") == BLOCK  # replayed, not refused
