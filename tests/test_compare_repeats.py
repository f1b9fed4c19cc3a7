"""One experiment run twice with one seed (`model=mlp,mlp`, a job copied by hand) is the same
run again, not another sample: compare counts it once in its group's statistics and says so,
the sweep warns when it plans such jobs, and the advice it gives (sweep trainer.seed) gives
samples that all count."""
from __future__ import annotations

import csv

import pytest
from helpers import make_run

from cnnbench.commands.compare.command import compare, left_out_lines
from cnnbench.commands.compare.group_table import group_columns
from hydra_plugins.cnnbench_launcher._planning import repeated_jobs

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.shifts=[]"]


def test_a_run_that_repeats_a_seed_of_its_group_is_left_out_of_its_statistics(tmp_path):
    for name, seed, acc in (("a", 1, 0.90), ("b", 2, 0.92), ("c", 1, 0.91), ("d", 1, 0.95)):
        make_run(tmp_path, name, acc, seed)
    result = compare([tmp_path], tmp_path / "out")
    (group,) = result.groups
    assert group.stats.acc.n == 2 and group.stats.acc.mean == pytest.approx(0.91)
    assert [r.name for r in group.used] == ["a", "b"]
    assert {r.name: r.repeats for r in group.left_out} == {"c": "a", "d": "a"}
    columns, rows = group_columns(result.groups)
    assert rows[0][columns.index("seeds")] == "1, 2"
    assert rows[0][columns.index("left out")] == \
        "completed, repeated seed (seed 1), completed, repeated seed (seed 1)"
    (line,) = left_out_lines(result.runs)
    assert line.startswith("2 completed runs repeat the seed of another run of the same "
                           "experiment"), line
    assert "c (seed 1, as a)" in line and "d (seed 1, as a)" in line, line


def test_runs_of_different_experiments_with_one_seed_are_not_repeats(tmp_path):
    make_run(tmp_path, "a", 0.90, 1)
    make_run(tmp_path, "b", 0.80, 1, config={"optimizer": {"lr": 0.01}})
    make_run(tmp_path, "failed", None, 1, status="failed", reason="x")
    result = compare([tmp_path], tmp_path / "out")
    assert sorted(g.stats.acc.n for g in result.groups) == [1, 1]
    assert not any(r.repeats for r in result.runs)
    assert not any("repeat" in line for line in left_out_lines(result.runs))


def test_the_sweep_warns_of_jobs_that_are_one_run_and_a_search_is_not_asked():
    jobs = [["model=mlp"], ["model=lenet"], ["model=mlp"]]
    warning = repeated_jobs(jobs, ["h1", "h2", "h1"])
    assert warning.startswith("1 job of this sweep repeats another job with the same config "
                              "and seed (model=mlp)"), warning
    assert "trainer.seed=0,1,2" in warning
    assert repeated_jobs(jobs, ["h1", "h2", "h3"]) is None


def test_a_sweep_that_repeats_a_job_warns_and_its_advice_gives_samples_that_all_count(
        cli, tmp_path):
    proc = cli("train", "-m", "model=mlp,mlp", *TINY[1:], "hydra.sweep.dir=twice",
               cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 job of this sweep repeats another job with the same config and seed" in out, out
    assert "1 completed run repeats the seed of another run" in out, out  # under its table
    compared = cli("compare", "twice", cwd=tmp_path)
    assert "1 completed run repeats the seed of another run" in compared.stdout, compared.stdout
    with open(tmp_path / "twice" / "comparison.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["n"] == "1", row
    advised = cli("train", "-m", "trainer.seed=0,1,2", *TINY, "hydra.sweep.dir=seeds",
                  cwd=tmp_path)
    assert advised.returncode == 0, advised.stdout + advised.stderr
    assert "repeats another job" not in advised.stdout + advised.stderr
    compared = cli("compare", "seeds", cwd=tmp_path)
    assert "the seed of another run" not in compared.stdout, compared.stdout
    with open(tmp_path / "seeds" / "comparison.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["n"] == "3", row
