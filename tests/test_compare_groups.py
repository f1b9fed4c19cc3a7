"""`cnnbench compare` groups runs that differ only in their seed: hand-written run directories
with known accuracies, the groups and their labels, the group table and comparison.csv."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from helpers import make_run, merge

from cnnbench.commands.compare.command import compare, left_out_lines
from cnnbench.commands.compare.group_table import group_columns, notes

T_975_DF2 = 4.302652729911275  # Student t tables, 97.5th percentile, 2 degrees of freedom


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def runs(tmp_path) -> Path:
    """lenet with 3 seeds (the device, progress bars and data folder differ between them),
    lenet with lr=0.01 and 3 seeds, lenet with label smoothing and one seed, mlp with one."""
    root = tmp_path / "runs"
    for seed, acc, where in ((1, 0.97, {"device": "cpu"}), (2, 0.98, {"progress": False}),
                             (3, 0.99, {"resume": "/somewhere/last.pt"})):
        make_run(root, f"a{seed}", acc, seed, secs=10.0 + seed, epochs=3,
                 config={"trainer": where, "dataset": {"root": f"/data{seed}"}})
    for seed, acc in ((1, 0.90), (2, 0.91), (3, 0.89)):
        make_run(root, f"b{seed}", acc, seed, config={"optimizer": {"lr": 0.01}}, epochs=3)
    make_run(root, "c1", 0.95, 1, config={"trainer": {"label_smoothing": 0.1}})
    make_run(root, "d1", 0.96, 7, model="mlp",
             config={"model": {"_target_": "cnnbench.models.mlp.MLP", "hidden": [200]}})
    return root


def test_seeds_collapse_into_one_group_and_other_differences_stay_apart(runs, tmp_path):
    result = compare([runs], tmp_path / "out")
    labels = [g.label for g in result.groups]
    assert labels == ["model=lenet, lr=0.001, trainer.label_smoothing=0",
                      "model=mlp, lr=0.001, trainer.label_smoothing=0",
                      "model=lenet, lr=0.001, trainer.label_smoothing=0.1",
                      "model=lenet, lr=0.01, trainer.label_smoothing=0"]
    assert [[r.name for r in g.runs] for g in result.groups] == [
        ["a1", "a2", "a3"], ["d1"], ["c1"], ["b1", "b2", "b3"]]
    rows = read_csv(tmp_path / "out" / "comparison.csv")
    assert [r["seeds"] for r in rows] == ["1;2;3", "7", "1", "1;2;3"]
    assert [r["n"] for r in rows] == ["3", "1", "1", "3"]


def test_a_setting_below_a_differing_choice_shows_when_it_varies_within_the_choice(tmp_path):
    mlp = {"model": {"_target_": "cnnbench.models.mlp.MLP", "hidden": [200]}}
    make_run(tmp_path, "lenet", 0.98, 1)  # a LeNet has no model.hidden: not shown as '—'
    make_run(tmp_path, "mlp200", 0.97, 1, model="mlp", config=mlp)
    groups = compare([tmp_path], tmp_path / "out").groups
    assert [g.label for g in groups] == ["model=lenet", "model=mlp"]  # model.* follow the model
    make_run(tmp_path, "mlp100", 0.96, 1, model="mlp",
             config=merge(mlp, {"model": {"hidden": [100]}}))
    groups = compare([tmp_path], tmp_path / "out").groups
    assert [g.label for g in groups] == ["model=lenet", "model=mlp, model.hidden=[200]",
                                         "model=mlp, model.hidden=[100]"]


def test_a_setting_only_some_stored_configs_have_is_a_difference(tmp_path):
    affine = {"augmentation": {"degrees": 10}}
    make_run(tmp_path, "plain", 0.98, 1)
    make_run(tmp_path, "rotated", 0.97, 1, config=affine)
    make_run(tmp_path, "rotated_affine", 0.96, 1, config=affine,
             choices={"augmentation": "affine"})
    groups = compare([tmp_path], tmp_path / "out").groups
    assert [g.label for g in groups] == [
        "augmentation=none, augmentation.degrees=—", "augmentation=none, augmentation.degrees=10",
        "augmentation=affine, augmentation.degrees=10"]
    columns, rows = group_columns(groups)
    assert columns[:2] == ["augmentation", "augmentation.degrees"]
    assert [row[:2] for row in rows] == [["none", "—"], ["none", "10"], ["affine", "10"]]


def test_statistics_of_a_group_in_comparison_csv(runs, tmp_path):
    compare([runs], tmp_path / "out")
    rows = {r["group"]: r for r in read_csv(tmp_path / "out" / "comparison.csv")}
    for column in ("test/acc_mean", "test/acc_std", "test/acc_ci95_low", "test/acc_ci95_high",
                   "n", "vs_best_p", "vs_best", "train_seconds_mean", "train_seconds_std"):
        assert column in next(iter(rows.values())), column
    a = rows["model=lenet, lr=0.001, trainer.label_smoothing=0"]
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert float(a["test/acc_mean"]) == pytest.approx(0.98)
    assert float(a["test/acc_std"]) == pytest.approx(0.01)
    assert float(a["test/acc_ci95_low"]) == pytest.approx(0.98 - half)
    assert float(a["test/acc_ci95_high"]) == pytest.approx(0.98 + half)
    assert float(a["train_seconds_mean"]) == pytest.approx(12.0)
    assert float(a["train_seconds_std"]) == pytest.approx(1.0)
    assert a["vs_best"] == "best" and a["vs_best_p"] == ""
    b = rows["model=lenet, lr=0.01, trainer.label_smoothing=0"]
    assert float(b["test/acc_mean"]) == pytest.approx(0.90)
    assert float(b["vs_best_p"]) < 0.001 and b["vs_best"] == "p<0.001"
    single = rows["model=mlp, lr=0.001, trainer.label_smoothing=0"]
    assert single["n"] == "1" and single["test/acc_mean"] == "0.96"
    assert single["test/acc_std"] == single["test/acc_ci95_low"] == ""  # no interval, no 0
    assert single["test/acc_ci95_high"] == single["train_seconds_std"] == ""
    assert single["vs_best"] == "n=1: no test"
    per_run = read_csv(tmp_path / "out" / "comparison_runs.csv")
    assert len(per_run) == 8 and {r["group"] for r in per_run} == set(rows)


def test_single_seed_row_shows_no_interval(runs, tmp_path):
    groups = compare([runs], tmp_path / "out").groups
    columns, rows = group_columns(groups)
    cell = lambda row, name: row[columns.index(name)]  # noqa: E731
    assert [cell(r, "n") for r in rows] == ["3", "1", "1", "3"]
    assert cell(rows[0], "test acc") == "98.00%" and cell(rows[0], "std") == "1.00"
    assert cell(rows[0], "CI95") == "95.52–100.00"
    for row in rows[1:3]:
        assert cell(row, "std") == cell(row, "CI95") == "" and cell(row, "n") == "1"
        assert cell(row, "vs best") == "n=1: no test"
    assert cell(rows[0], "train s") == "12.0 ± 1.0" and cell(rows[1], "train s") == "10.0"
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert "| model=mlp |" not in md  # settings are columns in the table, labels elsewhere
    assert "| mlp | 0.001 | 0 | 7 | 1 | 96.00% |  |  | n=1: no test |" in md


def test_only_completed_runs_with_an_accuracy_are_counted(tmp_path):
    for seed, acc in ((1, 0.97), (2, 0.99)):
        make_run(tmp_path, f"ok{seed}", acc, seed)
    make_run(tmp_path, "failed", None, 3, status="failed", reason="loss is nan")
    make_run(tmp_path, "noacc", None, 4)  # completed, but evaluated nothing
    result = compare([tmp_path], tmp_path / "out")
    (group,) = result.groups
    assert group.stats.acc.n == 2 and group.stats.acc.mean == pytest.approx(0.98)
    columns, rows = group_columns(result.groups)
    assert rows[0][columns.index("left out")] == "failed (seed 3), completed, no test acc (seed 4)"
    assert rows[0][columns.index("seeds")] == "1, 2"
    assert left_out_lines(result.runs) == [
        "1 of 4 runs did not complete and are left out of the statistics: failed: failed",
        "1 completed run without a test accuracy (left out of the statistics): noacc"]


def test_a_group_whose_runs_ran_on_different_devices_says_so(tmp_path):
    make_run(tmp_path, "gpu", 0.98, 1, device="cuda")
    make_run(tmp_path, "cpu", 0.97, 2, device="cpu")
    result = compare([tmp_path], tmp_path / "out")
    (group,) = result.groups  # the device is not part of the experiment
    columns, _ = group_columns(result.groups)
    assert notes(result.groups, columns)[-1] == (
        "Groups whose runs ran on different devices (their training times are not one "
        "machine's): model=lenet, dataset=mnist (cpu, cuda).")
    make_run(tmp_path, "gpu2", 0.97, 3, device="cuda")
    result = compare([tmp_path / "gpu", tmp_path / "gpu2"], tmp_path / "out")
    assert not any("different devices" in n for n in notes(result.groups, columns))


@pytest.mark.parametrize("columns", [80, 120])
def test_compare_in_a_narrow_terminal_never_cuts_a_number(cli, tmp_path, columns):
    """21 runs in 9 groups, printed by a real `cnnbench compare` at 80 and 120 columns: no line is
    wider than the terminal, and every group's accuracy, interval and p-value is printed whole
    (columns are dropped, and named, to make room; never cropped)."""
    import random

    rng = random.Random(0)
    for k, (model, opt) in enumerate((m, o) for m in ("mlp", "lenet", "cnn2")
                                     for o in ("sgd", "adam", "adadelta")):
        for seed in range(2 if model != "cnn2" else 3):
            make_run(tmp_path / "sweep", f"{model}_{opt}_{seed}", 0.9 + rng.random() * 0.09, seed,
                     model=model, choices={"optimizer": opt},
                     images_per_s=33557.0 + k)
    proc = cli("compare", str(tmp_path / "sweep"), f"out={tmp_path / 'out'}", "runs=true",
               cwd=tmp_path, env={"COLUMNS": str(columns)}, check=True)
    lines = proc.stdout.splitlines()
    import re

    runs = [line for line in lines if re.search(r"\bcompleted +\d+\.\d\d%", line)]  # runs=true
    table = [line for line in lines if line.split()[:1] in (["mlp"], ["lenet"], ["cnn2"])
             and line not in runs]
    rows = table + runs
    assert len(table) == 9
    assert len(runs) == 21 and all(len(line) <= columns for line in rows)
    for run in read_csv(tmp_path / "out" / "comparison_runs.csv"):
        acc = f"{100 * float(run['test/acc']):.2f}%"
        assert any(acc in line and f" {run['seed']} " in line for line in runs), acc
    for row in read_csv(tmp_path / "out" / "comparison.csv"):
        acc = f"{100 * float(row['test/acc_mean']):.2f}%"
        assert sum(acc in line for line in table) >= 1, acc
        low = max(0.0, 100 * float(row["test/acc_ci95_low"]))
        assert any(f"{low:.2f}–" in line for line in table), low
