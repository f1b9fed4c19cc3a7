"""`cnnbench compare` with the fields other parts of the project add to metrics.json (the
published number, time to target, energy), without them, with junk in them; the pictures of
groups; the command itself in a subprocess."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from helpers import assert_png, make_run

from cnnbench.commands.compare.command import compare
from cnnbench.commands.compare.curves import curves_figure
from cnnbench.commands.compare.group_table import group_columns, notes
from cnnbench.commands.compare.plots import accuracy_vs_time_figure

T_975_DF2 = 4.302652729911275
PUBLISHED = {"value": 0.988, "metric": "test/acc", "source": "the course notebook"}


def table(groups) -> dict[str, dict[str, str]]:
    """The group table as {first run's name: {column: cell}}."""
    columns, rows = group_columns(groups)
    return {g.runs[0].name: dict(zip(columns, row)) for g, row in zip(groups, rows)}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_verdict_against_the_published_number(tmp_path):
    """CI95 of [0.985, 0.988, 0.991] is 0.988 ± 0.0075: 0.988 matches; 0.97 lies below
    it (ours above); 0.999 above it (ours below); a single run gets no verdict."""
    for lr, value in ((0.001, 0.988), (0.002, 0.97), (0.003, 0.999), (0.004, 0.98)):
        seeds = (1, 2, 3) if lr != 0.004 else (1,)
        for seed, acc in zip(seeds, (0.985, 0.988, 0.991)):
            make_run(tmp_path, f"lr{lr}_{seed}", acc, seed, config={"optimizer": {"lr": lr}},
                     published={**PUBLISHED, "value": value})
    make_run(tmp_path, "none_1", 0.99, 1, config={"optimizer": {"lr": 0.005}}, published=None)
    result = compare([tmp_path], tmp_path / "out")
    cells = table(result.groups)
    assert {name: row["verdict"] for name, row in cells.items()} == {
        "lr0.001_1": "matches", "lr0.002_1": "above", "lr0.003_1": "below",
        "lr0.004_1": "n=1: no interval", "none_1": ""}
    assert cells["lr0.002_1"]["published"] == "97.00%" and cells["none_1"]["published"] == ""
    rows = {r["runs"].split(";")[0]: r for r in read_csv(tmp_path / "out" / "comparison.csv")}
    assert rows["lr0.001_1"]["published_value"] == "0.988"
    assert rows["lr0.001_1"]["published_source"] == "the course notebook"
    assert rows["lr0.003_1"]["verdict"] == "below" and rows["none_1"]["verdict"] == ""
    columns, _ = group_columns(result.groups)
    assert any(line.startswith("verdict: 'matches'") for line in notes(result.groups, columns))


def test_published_number_of_an_older_run_comes_from_its_stored_config(tmp_path):
    for seed, acc in ((1, 0.97), (2, 0.98), (3, 0.99)):
        make_run(tmp_path, f"r{seed}", acc, seed, config={"published": PUBLISHED})
    (group,) = compare([tmp_path], tmp_path / "out").groups
    assert group.stats.published["value"] == 0.988 and group.stats.verdict == "matches"


def test_time_to_target_over_the_seeds_that_reached_it(tmp_path):
    target = {"target_acc": 0.98, "target_metric": "val/acc"}
    for seed, secs in ((1, 3.0), (2, 3.2), (3, 3.1)):
        make_run(tmp_path, f"all_{seed}", 0.99, seed, time_to_target_s=secs,
                 epochs_to_target=seed, **target)
    for seed, secs in ((1, 5.0), (2, 6.0), (3, None)):
        make_run(tmp_path, f"some_{seed}", 0.985, seed, config={"optimizer": {"lr": 0.01}},
                 time_to_target_s=secs, epochs_to_target=secs and 4, **target)
    make_run(tmp_path, "never_1", 0.9, 1, config={"optimizer": {"lr": 0.1}},
             time_to_target_s=None, epochs_to_target=None, **target)
    make_run(tmp_path, "old_1", 0.95, 1, config={"optimizer": {"lr": 0.2}})  # predates it
    make_run(tmp_path, "none_1", 0.95, 1, config={"optimizer": {"lr": 0.3}},  # no target asked
             time_to_target_s=None, epochs_to_target=None, target_acc=None, target_metric=None)
    result = compare([tmp_path], tmp_path / "out")
    cells = {name: row["to target"] for name, row in table(result.groups).items()}
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # std of 3.0, 3.2, 3.1 is 0.1
    assert cells == {"all_1": f"3.1 ± {half:.1f} s (3/3)", "some_1": "5.5 ± 6.4 s (2/3)",
                     "never_1": "not reached (0/1)", "old_1": "", "none_1": ""}
    assert any("to target (val/acc ≥ 98.00%)" in line
               for line in notes(result.groups, ["to target"]))
    rows = {r["runs"].split(";")[0]: r for r in read_csv(tmp_path / "out" / "comparison.csv")}
    assert rows["all_1"]["reached_target"] == "3" and rows["some_1"]["reached_target"] == "2"
    assert float(rows["all_1"]["time_to_target_s_mean"]) == pytest.approx(3.1)
    assert float(rows["all_1"]["epochs_to_target_mean"]) == pytest.approx(2.0)
    assert rows["never_1"]["time_to_target_s_mean"] == "" and rows["old_1"]["target"] == ""


def test_energy_per_run_and_per_point_of_accuracy(tmp_path):
    for seed, joules in ((1, 980.0), (2, 1020.0)):
        make_run(tmp_path, f"gpu_{seed}", 0.98, seed, energy_joules=joules)
    make_run(tmp_path, "cpu_1", 0.97, 1, config={"optimizer": {"lr": 0.01}},
             energy_joules=None, energy_note="no energy counter on the CPU")
    result = compare([tmp_path], tmp_path / "out")
    cells = table(result.groups)
    assert (cells["gpu_1"]["energy J"], cells["gpu_1"]["J/pt"]) == ("1,000", "10.2")  # /98
    assert cells["cpu_1"]["energy J"] == cells["cpu_1"]["J/pt"] == ""
    assert "energy not measured: no energy counter on the CPU." in notes(result.groups, [])
    rows = read_csv(tmp_path / "out" / "comparison.csv")
    assert float(rows[0]["joules_per_point_mean"]) == pytest.approx(1000 / 98)


def test_runs_without_the_new_fields_or_with_junk_in_them(tmp_path):
    make_run(tmp_path, "plain", 0.98, 1)
    make_run(tmp_path, "junk", 0.97, 1, config={"optimizer": {"lr": 0.01}},
             published="98.8%", energy_joules="lots", time_to_target_s="soon",
             target_acc=[1], energy_note=5)
    result = compare([tmp_path], tmp_path / "out")
    columns, _ = group_columns(result.groups)
    assert not {"published", "verdict", "energy J", "J/pt"} & set(columns)
    assert "to target" not in columns  # junk in place of a target and its time: no target
    only_plain = compare([tmp_path / "plain"], tmp_path / "out2")
    columns, _ = group_columns(only_plain.groups)
    assert not {"published", "verdict", "to target", "energy J", "left out"} & set(columns)
    assert "macro F1" not in columns and "img/s" not in columns  # no run has them
    assert "loss" in columns and "train s" in columns
    header = read_csv(tmp_path / "out2" / "comparison.csv")[0]
    assert "published_value" not in header and "time_to_target_s_mean" not in header
    assert "energy_joules" not in read_csv(tmp_path / "out2" / "comparison_runs.csv")[0]


@pytest.fixture
def four_groups(tmp_path) -> Path:
    """3 seeds each of three learning rates, one seed of a fourth, with histories."""
    root = tmp_path / "runs"
    for lr, base in ((0.001, 0.98), (0.01, 0.96), (0.1, 0.90)):
        for seed in (1, 2, 3):
            make_run(root, f"lr{lr}_{seed}", base + seed / 1000, seed, secs=10 * seed,
                     config={"optimizer": {"lr": lr}}, epochs=4)
    make_run(root, "single", 0.97, 9, config={"optimizer": {"lr": 0.5}}, epochs=4)
    return root


def test_pictures_show_intervals_and_bands(four_groups, tmp_path):
    result = compare([four_groups], tmp_path / "out")
    assert_png(tmp_path / "out" / "comparison.png")
    assert_png(tmp_path / "out" / "curves.png")
    ax = accuracy_vs_time_figure(result.groups).axes[0]
    assert len(ax.containers) == 3  # an error bar per group of 3 seeds, none for one seed
    lo, hi = sorted(cap.get_ydata()[0] for cap in ax.containers[0].lines[1])
    s = result.groups[0].stats.acc
    assert (lo, hi) == pytest.approx((100 * s.ci_low, 100 * s.ci_high))
    fig = curves_figure(result.groups)
    acc_ax = fig.axes[0]
    assert len(acc_ax.collections) == 3  # a min–max band per group of 3, none for one run
    assert len(acc_ax.lines) == 4 and "min–max" in acc_ax.get_title()
    first = result.groups[0]  # lr=0.001: val/acc at the last epoch is acc - seed/1000
    assert acc_ax.lines[0].get_ydata()[-1] == pytest.approx(100 * 0.98)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == f"{first.label} (n=3, seeds 1–3)"
    assert legend[1] == "lr=0.5 (1 run, seed 9)"  # groups in the order of the table


def test_compare_cli_on_seeds(cli, four_groups, tmp_path):
    proc = cli("compare", str(four_groups), "--out", str(tmp_path / "cmp"), cwd=tmp_path,
               env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].strip() == "10 runs in 4 groups"
    rows = [line.split() for line in lines if line.startswith((" 0.", " 0,"))]
    assert [r[0] for r in rows] == ["0.001", "0.5", "0.01", "0.1"]  # best mean first
    half = 100 * T_975_DF2 * 0.001 / math.sqrt(3)
    assert rows[0][1:7] == ["1–3", "3", "98.20%", "0.10",
                            f"{98.2 - half:.2f}–{98.2 + half:.2f}", "best"]
    assert rows[1][1:5] == ["9", "1", "97.00%", "n=1:"]  # no std, no CI: straight to vs best
    assert rows[2][6] == "p<0.001" and rows[3][6] == "p<0.001"
    out = tmp_path / "cmp"
    assert {p.name for p in out.iterdir()} == {"comparison.csv", "comparison_runs.csv",
                                               "comparison.md", "comparison.png", "curves.png"}
    groups = read_csv(out / "comparison.csv")
    assert [g["n"] for g in groups] == ["3", "1", "3", "3"] and len(groups) == 4
    assert len(read_csv(out / "comparison_runs.csv")) == 10
