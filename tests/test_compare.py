"""`cnnbench compare` on hand-written run directories: completed, failed, interrupted, broken."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import assert_png

from cnnbench.commands.compare.command import compare
from cnnbench.commands.compare.runs import load_runs
from cnnbench.commands.compare.table import differing_options, display_rows
from cnnbench.errors import UserError
from cnnbench.rundir import find_run_dirs

OPTIONS = {"model": "lenet", "dataset": "mnist", "optimizer": "adam", "lr": 0.001,
           "scheduler": "none", "augmentation": "none", "batch_size": 128, "epochs": 3, "seed": 42}


def write_run(sweep: Path, name: str, metrics: dict | str | None, epochs: int = 0,
              choices: dict | None = None) -> Path:
    """A run directory as `cnnbench train -m` leaves it (only the files compare reads)."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    choices = {**{k: OPTIONS[k] for k in ("model", "dataset", "optimizer", "scheduler",
                                          "augmentation")}, **(choices or {})}
    (run / ".hydra" / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n"
        + "".join(f"      {k}: {v}\n" for k, v in choices.items()))
    (run / ".hydra" / "config.yaml").write_text(
        "optimizer:\n  lr: 0.001\ntrainer:\n  batch_size: 128\n  epochs: 3\n  seed: 42\n"
        "dataset:\n  root: ${oc.env:CNNBENCH_DATA,./data}\n")
    if isinstance(metrics, dict):
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif isinstance(metrics, str):
        (run / "metrics.json").write_text(metrics)
    if epochs:
        rows = ["epoch,train/loss,train/acc,val/loss,val/acc,lr,epoch_seconds,images_per_s"]
        rows += [f"{e},{1 / e},{0.8 + e / 100},{1.2 / e},{0.7 + e / 50},0.001,2.0,5000"
                 for e in range(1, epochs + 1)]
        (run / "history.csv").write_text("\n".join(rows) + "\n")
    return run


def completed(acc: float, **overrides) -> dict:
    return {"status": "completed", **OPTIONS, **overrides, "test/acc": acc, "test/loss": 1 - acc,
            "test/macro_f1": acc - 0.01, "shift/2px": acc / 2, "shift/4px": acc / 4,
            "params": overrides.pop("params", 44426), "train_seconds": 12.5,
            "images_per_s": 4800.0, "per_class": [{"class": "0", "f1": 0.9}]}


@pytest.fixture
def sweep(tmp_path) -> Path:
    """A sweep: two completed runs, a diverged (failed) one, an interrupted one, one that died
    before writing metrics.json, one with a corrupt metrics.json, and one still running."""
    root = tmp_path / "outputs" / "multirun" / "2025-01-01_00-00-00_abc123"
    root.mkdir(parents=True)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    write_run(root, "0_model=mlp", completed(0.91, model="mlp", params=188660), epochs=3,
              choices={"model": "mlp"})
    write_run(root, "1_model=lenet", completed(0.985), epochs=3)
    write_run(root, "2_model=lenet,optimizer.lr=10", {
        "status": "failed", **OPTIONS, "lr": 10.0, "epochs_run": 1,
        "reason": "loss is nan at batch 25"}, epochs=1)
    write_run(root, "3_model=mlp,optimizer=sgd", {
        "status": "interrupted", **OPTIONS, "model": "mlp", "optimizer": "sgd",
        "reason": "stopped by the user (Ctrl-C)"}, epochs=2)
    write_run(root, "4_model=lenet,scheduler=cosine", None, choices={"scheduler": "cosine"})
    write_run(root, "5_model=lenet,seed=1", "{not json")
    write_run(root, "6_model=lenet,seed=2", {"status": "running", **OPTIONS, "seed": 2}, epochs=1)
    return root


def test_finds_every_run_and_nothing_inside_runs(sweep):
    (sweep / "1_model=lenet" / "tb").mkdir()
    (sweep / "1_model=lenet" / "checkpoints").mkdir()
    assert [p.name[0] for p in find_run_dirs(sweep)] == list("0123456")
    assert find_run_dirs(sweep / "0_model=mlp") == [sweep / "0_model=mlp"]
    outputs = sweep.parents[1]
    assert len(find_run_dirs(outputs)) == 7  # outputs/ itself works too


def test_compare_sorts_by_accuracy_and_keeps_unfinished_runs(sweep, tmp_path):
    result = compare([sweep])
    assert result.out_dir == sweep
    runs = result.runs
    assert [r.name for r in runs[:2]] == ["1_model=lenet", "0_model=mlp"]
    status = {r.name.split("_")[0]: r.status for r in runs}
    assert status == {"0": "completed", "1": "completed", "2": "failed", "3": "interrupted",
                      "4": "no metrics.json", "5": "unreadable", "6": "running"}
    missing = next(r for r in runs if r.name.startswith("4_"))
    assert missing.options["scheduler"] == "cosine" and missing.options["lr"] == 0.001
    assert missing.metrics == {}
    assert differing_options(runs) == ["model", "optimizer", "lr", "scheduler", "seed"]

    with open(sweep / "comparison_runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == [r.name for r in runs]
    assert rows[0]["test/acc"] == "0.985" and rows[0]["shift/4px"] == str(0.985 / 4)
    assert rows[2]["status"] in {"failed", "interrupted", "no metrics.json", "unreadable",
                                 "running"}
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["reason"] == "loss is nan at batch 25" and failed["test/acc"] == ""
    by_run = {r["run"]: r["group"] for r in rows}  # jobs 1, 5 and 6 differ only in the seed
    assert by_run["1_model=lenet"] == by_run["6_model=lenet,seed=2"] \
        == by_run["5_model=lenet,seed=1"] == "model=lenet, optimizer=adam, lr=0.001, scheduler=none"
    assert len(set(by_run.values())) == 5

    with open(sweep / "comparison.csv", newline="") as f:
        groups = list(csv.DictReader(f))
    assert [(g["model"], g["n"], g["left_out"]) for g in groups] == [
        ("lenet", "1", "2"), ("mlp", "1", "0"), ("lenet", "0", "1"), ("mlp", "0", "1"),
        ("lenet", "0", "1")]
    assert groups[0]["left_out_why"] == "running (seed 2), unreadable (seed 42)"
    assert groups[2]["lr"] == "10" and groups[2]["left_out_why"] == "failed (seed 42)"

    md = (sweep / "comparison.md").read_text()
    group_part, run_part = md.split("## Runs")
    table = [line for line in run_part.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 7  # header + one row per run
    assert table[1].startswith("| lenet | adam | 0.001 | none | 42 | completed | 98.50% |")
    assert "- `2_model=lenet,optimizer.lr=10` (failed): loss is nan at batch 25" in md
    table = [line for line in group_part.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 5  # header + one row per group
    assert table[1].startswith("| lenet | adam | 0.001 | none | 42 | 1 | 98.50% |  |  | best |")
    assert_png(sweep / "comparison.png")
    assert_png(sweep / "curves.png")


def test_display_rows_show_the_options_that_differ(sweep):
    runs = load_runs([sweep / "0_model=mlp", sweep / "1_model=lenet"])
    columns, rows = display_rows(runs)
    assert columns[:2] == ["model", "status"]  # only the model differs between these two
    assert "acc 2px" in columns and "acc 4px" in columns
    assert rows[1][:3] == ["lenet", "completed", "98.50%"]


def test_out_dir_and_several_paths(sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    result = compare([sweep / "0_model=mlp", sweep / "1_model=lenet"], out)
    assert {p.name for p in result.written} == {"comparison.csv", "comparison_runs.csv",
                                                "comparison.md", "comparison.png", "curves.png"}
    assert all(p.parent == out for p in result.written)
    result = compare([sweep / "0_model=mlp", sweep / "1_model=lenet"])
    assert result.out_dir.parent == Path("outputs") / "comparisons"


def test_only_unfinished_runs_still_give_a_table(sweep, tmp_path):
    result = compare([sweep / "2_model=lenet,optimizer.lr=10", sweep / "5_model=lenet,seed=1"],
                     tmp_path / "out")
    assert [r.status for r in result.runs] == ["failed", "unreadable"]
    assert any("comparison.png" in s for s in result.skipped)
    assert (tmp_path / "out" / "comparison.csv").is_file()


def test_no_runs_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "tb").mkdir(parents=True)
    with pytest.raises(UserError, match="No runs found in .*empty.*metrics.json"):
        load_runs([tmp_path / "empty"])
    with pytest.raises(UserError, match="does not exist"):
        load_runs([tmp_path / "nowhere"])


def test_compare_cli(cli, sweep, tmp_path):
    proc = cli("compare", str(sweep), "--out", str(tmp_path / "cmp"), cwd=tmp_path,
               env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    body = [line.split() for line in proc.stdout.splitlines()
            if line.startswith((" lenet ", " mlp "))]
    assert [row[:4] for row in body] == [["lenet", "adam", "0.001", "none"],
                                         ["mlp", "adam", "0.001", "none"],
                                         ["lenet", "adam", "10", "none"],
                                         ["mlp", "sgd", "0.001", "none"],
                                         ["lenet", "adam", "0.001", "cosine"]]
    assert body[0][4:8] == ["42", "1", "98.50%", "best"]  # seeds, n, mean; no std, no CI
    assert body[1][4:7] == ["42", "1", "91.00%"] and "n=1: no test" in " ".join(body[1])
    assert [row[5] for row in body] == ["1", "1", "0", "0", "0"]
    assert "5 of 7 runs did not complete and are left out of the statistics" in proc.stdout
    assert "job 2: failed; job 3: interrupted" in proc.stdout
    assert (tmp_path / "cmp" / "comparison.md").is_file()
    proc = cli("compare", str(sweep), "--out", str(tmp_path / "cmp"), "--runs", cwd=tmp_path,
               env={"COLUMNS": "160"})
    body = [line for line in proc.stdout.splitlines() if line.startswith(" job ")]
    assert len(body) == 7 and "98.50%" in body[0] and body[0].startswith(" job 1 ")
    assert body[1].startswith(" job 0 ") and "91.00%" in body[1]
    assert [line.split()[1] for line in body] == list("1023456")  # sorted, unfinished last
    proc = cli("compare", str(tmp_path / "cmp"), cwd=tmp_path)
    assert proc.returncode == 2 and "No runs found" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
