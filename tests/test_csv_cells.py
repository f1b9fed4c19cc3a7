"""Every CSV cnnbench writes holds user text as plain text: a cell a spreadsheet would run as a
formula (= + - @, a leading tab or carriage return) gets a leading apostrophe; numbers stay
numbers. Class names come from folder names, run names from directory names."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import trained_run
from PIL import Image

from cnnbench.run.sinks import HistoryCSV
from cnnbench.rundir.csv_cells import plain_cell, plain_record, plain_row

# a folder name cannot hold '/', so the link has no scheme; the formula is what matters
FORMULA_CLASS = '=HYPERLINK("evil.example","y")'


@pytest.mark.parametrize("text", [FORMULA_CLASS, "+1+2", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)",
                                  "\t=1+1", "\r=1+1", "-", "=", "-inf", "+nan"])
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text):
    assert plain_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-0.5, "-0.5", "+1e-3", "-12", "-.5", "1.5E+07", 3, -7, 0.25,
                                   float("-inf"), True, None, "", "cat", "class_3", "a=b",
                                   " =1", "'=already plain"])
def test_numbers_and_harmless_text_are_written_as_they_are(value):
    assert plain_cell(value) == value


def test_rows_and_records_go_through_the_same_cell_rule():
    assert plain_row(["=1", -0.5, "-0.5", "ok"]) == ["'=1", -0.5, "-0.5", "ok"]
    assert plain_record({"name": "@x", "loss": -1.25}) == {"name": "'@x", "loss": -1.25}


def test_history_csv_keeps_negative_numbers_as_numbers(tmp_path):
    history = HistoryCSV(tmp_path / "history.csv")
    history.write({"epoch": 1, "train/loss": -0.5, "note": "=2+2"})
    rows = list(csv.DictReader(open(tmp_path / "history.csv", newline="")))
    assert rows == [{"epoch": "1", "train/loss": "-0.5", "note": "'=2+2"}]


def write_folder(root: Path) -> None:
    for name, value in ((FORMULA_CLASS, 30), ("cat", 220)):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), value + i, np.uint8)).save(root / name / f"{i}.png")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A real tiny run on an image folder whose first class is named like a formula."""
    photos = tmp_path_factory.mktemp("photos")
    write_folder(photos)
    return trained_run(tmp_path_factory, [
        "dataset=imagefolder", f"dataset.path={photos}", "dataset.image_size=8", "model=mlp",
        "trainer.epochs=1", "trainer.device=cpu", "trainer.val_split=0",
        "trainer.progress=false", "evaluation.plots=false", "evaluation.table=false",
        "hydra.run.dir=run"])


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_predictions_csv_writes_a_formula_class_name_as_plain_text(run, tmp_path, cli):
    Image.fromarray(np.full((8, 8, 3), 40, np.uint8)).save(tmp_path / "@pic.png")
    proc = cli("predict", f"checkpoint={run}", "inputs=@pic.png", "topk=2", "out=preds",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header, row = rows_of(tmp_path / "preds" / "predictions.csv")
    cells = dict(zip(header, row))
    assert cells["file"] == "'@pic.png"
    assert {cells["predicted"], cells["top2"]} == {"'" + FORMULA_CLASS, "cat"}
    assert 0 < float(cells["probability"]) <= 1 and 0 <= float(cells["top2_probability"]) <= 1
    assert not any(c.startswith(("=", "+", "-", "@")) for c in row), row


def test_compare_csvs_write_a_formula_run_name_as_plain_text(run, tmp_path, cli):
    shutil.copytree(run, tmp_path / "runs" / "=1+1")
    proc = cli("compare", "runs", "out=cmp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header, row = rows_of(tmp_path / "cmp" / "comparison_runs.csv")
    assert dict(zip(header, row))["run"] == "'=1+1"
    header, row = rows_of(tmp_path / "cmp" / "comparison.csv")
    assert dict(zip(header, row))["runs"] == "'=1+1"
    assert float(dict(zip(header, row))["test/acc_mean"]) >= 0
