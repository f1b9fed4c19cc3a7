"""`cnnbench compare` shows the outputs of `cnnbench eval` as evaluations, apart from the
training runs: never a group, a ranked row, a seed statistic, a CSV row or a point in a picture;
and `cnnbench eval` writes no TensorBoard HParams session."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import make_run, trained_run

from cnnbench.commands.compare.command import compare
from cnnbench.rundir import TB_DIR

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.epochs=1", "trainer.progress=false", "trainer.device=cpu"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_eval(folder: Path, checkpoint: Path, acc: float, epoch: int = 3) -> Path:
    """A folder as `cnnbench eval` leaves it: metrics.json with kind: eval, no .hydra/."""
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "status": "completed", "kind": "eval", "model": "lenet", "dataset": "mnist",
        "optimizer": "adam", "lr": 0.001, "checkpoint": str(checkpoint.resolve()),
        "checkpoint_epoch": epoch, "test/acc": acc, "test/loss": 1 - acc, "params": 44426}))
    return folder


@pytest.fixture
def outputs(tmp_path) -> Path:
    """Two seeds of lenet, one of mlp, and an evaluation of the first lenet run's best.pt with
    an accuracy higher than any run's."""
    root = tmp_path / "outputs"
    make_run(root / "runs", "a1", 0.97, 1, epochs=2)
    make_run(root / "runs", "a2", 0.98, 2, epochs=2)
    make_run(root / "runs", "m1", 0.95, 1, model="mlp", epochs=2)
    write_eval(root / "eval" / "e1", root / "runs" / "a1" / "checkpoints" / "best.pt", 0.999)
    return root


def test_an_evaluation_is_in_no_group_ranking_statistic_or_csv(outputs, tmp_path):
    result = compare([outputs], tmp_path / "out")
    assert [e.name for e in result.evaluations] == ["eval/e1"]
    assert all(not r.is_evaluation for r in result.runs) and len(result.runs) == 3
    assert [g.label for g in result.groups] == ["model=lenet", "model=mlp"]
    best = result.groups[0]
    assert best.stats.best and best.stats.acc.n == 2  # the runs' own test metrics
    assert best.stats.acc.mean == pytest.approx(0.975)
    groups = read_csv(tmp_path / "out" / "comparison.csv")
    assert [g["group"] for g in groups] == ["model=lenet", "model=mlp"]
    assert "eval" not in " ".join(g["runs"] for g in groups)
    runs = read_csv(tmp_path / "out" / "comparison_runs.csv")
    assert sorted(r["run"] for r in runs) == ["runs/a1", "runs/a2", "runs/m1"]
    assert next(r for r in runs if r["run"] == "runs/a1")["test/acc"] == "0.97"


def test_comparison_md_lists_the_evaluation_with_its_checkpoint_and_accuracy(outputs, tmp_path):
    compare([outputs], tmp_path / "out")
    md = (tmp_path / "out" / "comparison.md").read_text()
    groups, rest = md.split("## Runs")
    runs, evaluations = rest.split("## Evaluations")
    assert "99.90%" not in groups + runs and "e1" not in groups + runs
    assert "| eval/e1 | runs/a1: best.pt (epoch 3) | mnist | 99.90% |" in evaluations
    assert "not training runs" in evaluations


def test_compare_prints_evaluations_in_a_table_of_their_own(cli, outputs, tmp_path):
    proc = cli("compare", str(outputs), f"out={tmp_path / 'out'}", cwd=tmp_path,
               env={"COLUMNS": "100"}, check=True)
    table, evaluations = proc.stdout.split("evaluations (1)")
    assert "99.90%" not in table and "97.50%" in table  # the lenet group's mean, ranked first
    row = next(line for line in evaluations.splitlines() if "eval/e1" in line)
    assert "runs/a1: best.pt (epoch 3)" in row and "99.90%" in row
    assert "shown apart" in evaluations


def test_only_evaluations_give_their_table_and_no_ranking(outputs, tmp_path, cli):
    proc = cli("compare", str(outputs / "eval"), f"out={tmp_path / 'out'}", cwd=tmp_path,
               check=True)
    assert "no training runs to compare" in proc.stdout and "evaluations (1)" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny real training run and a real `cnnbench eval` of its best checkpoint."""
    from conftest import run_cli

    run = trained_run(tmp_path_factory, [*TINY, "hydra.run.dir=run"])
    out = run.parent / "evaluation"
    run_cli("eval", f"checkpoint={run / 'checkpoints' / 'best.pt'}", f"out={out}",
            "trainer.device=cpu", cwd=run.parent, check=True)
    return run, out


def _hparams_in_events(folder: Path) -> bool:
    """Whether the TensorBoard events in `folder` hold an HParams session."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    try:
        return bool(events.PluginTagToContent("hparams"))
    except KeyError:
        return False


def test_eval_writes_no_hparams_session_and_compare_shows_it_apart(evaluated, tmp_path):
    run, out = evaluated
    assert any((out / TB_DIR).glob("events.out.tfevents.*"))
    assert not _hparams_in_events(out / TB_DIR)  # TensorBoard's HParams table lists training runs only
    assert _hparams_in_events(run / TB_DIR)  # the evaluated run is there, a session
    result = compare([run, out], tmp_path / "out")
    assert [len(g.runs) for g in result.groups] == [1] and result.groups[0].runs[0].path == run
    (evaluation,) = result.evaluations
    evaluated_acc = json.loads((out / "metrics.json").read_text())["test/acc"]
    assert evaluation.acc == evaluated_acc
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert f"{run.name}: best.pt" in md.split("## Evaluations")[1]


@pytest.mark.parametrize("columns", [40, 60, 80])
def test_the_evaluations_table_keeps_its_numbers_whole_at_any_width(cli, outputs, tmp_path,
                                                                     columns):
    far = Path("/elsewhere/a/long/folder/of/checkpoints/from/another/machine/last.pt")
    write_eval(outputs / "eval" / "e2_with_a_rather_long_name", far, 0.5)
    proc = cli("compare", str(outputs), f"out={tmp_path / 'out'}", cwd=tmp_path,
               env={"COLUMNS": str(columns)}, check=True)
    evaluations = proc.stdout.split("evaluations (2)")[1].split("Evaluations (")[0]
    assert all(len(line) <= columns for line in evaluations.splitlines()), evaluations
    assert "99.90%" in evaluations and "50.00%" in evaluations and "…%" not in evaluations
    if columns >= 60:  # a table: the checkpoint's file name and epoch stay
        assert "last.pt (epoch 3)" in evaluations and "best.pt (epoch 3)" in evaluations
