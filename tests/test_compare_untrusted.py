"""A run directory is someone else's files: `cnnbench compare` reads a run's metrics.json and
.hydra/ as untrusted input. A status cnnbench never writes is reported as unreadable, no control
character (nor rich markup, nor matplotlib math) from a run's text reaches the terminal, the
files or the pictures, a metric outside its range is left out like a NaN, and at 80 columns a
long status note never squeezes the numbers of the runs table."""
from __future__ import annotations

import csv
import json
import re
import unicodedata
from pathlib import Path

import pytest
from helpers import make_run

from cnnbench.commands.compare.runs import load_runs
from cnnbench.commands.compare.table import sort_runs, terminal_rows
from cnnbench.rundir import COMPLETED, FINAL_STATUSES, RUNNING, STARTING, UNREADABLE
from cnnbench.rundir.record import load_metrics, run_status, shown_text

FILES = ("comparison.csv", "comparison_runs.csv", "comparison.md")


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` no terminal or file should get from a run: controls other than
    a newline, format characters (bidi overrides), separators, surrogates."""
    return [c for c in text if c not in "\n\r"
            and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def edit_metrics(run: Path, **values) -> None:
    """Change a run's metrics.json as a hand, a tool or a damaged disk might (json.dumps
    writes NaN and Infinity bare)."""
    path = run / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def compare_at(cli, tmp_path: Path, *runs: Path, columns: int = 80):
    proc = cli("compare", *map(str, runs), "runs=true", f"out={tmp_path / 'out'}",
               cwd=tmp_path, env={"COLUMNS": str(columns)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    return proc


@pytest.mark.parametrize("status", [*FINAL_STATUSES, STARTING, RUNNING])
def test_every_status_cnnbench_writes_is_read_as_it_is(tmp_path, status):
    make_run(tmp_path, "run", 0.9, 1, status=status)
    _, read, _ = load_metrics(tmp_path / "run")
    assert read == status and run_status(tmp_path / "run") == status


@pytest.mark.parametrize("status,said", [
    ("zzz\u0000garbage", "status 'zzz?garbage' is not one cnnbench writes"),
    ("Completed", "status 'Completed' is not one cnnbench writes"),
    (5, "status 5 is not one cnnbench writes"),
    (None, "metrics.json gives no status"),
    ("x" * 500, "status '" + "x" * 39 + "…' is not one cnnbench writes"),
])
def test_a_status_cnnbench_never_writes_is_unreadable_with_the_reason(tmp_path, status, said):
    make_run(tmp_path, "run", 0.9, 1, reason="line one\nline\u202etwo\x1b[31m")
    edit_metrics(tmp_path / "run", status=status)
    _, read, reason = load_metrics(tmp_path / "run")
    assert (read, reason) == (UNREADABLE, said)
    assert run_status(tmp_path / "run") is None


def test_a_reason_is_read_without_control_characters(tmp_path):
    make_run(tmp_path, "run", None, 1, status="failed", reason="out of\nmemory\x07\u2028here")
    _, status, reason = load_metrics(tmp_path / "run")
    assert (status, reason) == ("failed", "out of memory? here")
    assert shown_text("a\tb\x00c\u200bd\ud800") == "a b?c?d?"


def test_a_garbage_status_reaches_neither_the_terminal_nor_the_files(cli, tmp_path):
    good = make_run(tmp_path, "good", 0.9, 1, epochs=2)
    copy = make_run(tmp_path, "copy", 0.9, 2, epochs=2, reason="\x1b]0;owned\x07 [/oops]",
                    energy_note="no\x00counter", device="cpu\u202e")
    edit_metrics(copy, status="zzz\u0000garbage", model="[bold]mlp[/oops]\x1b[2J")
    proc = compare_at(cli, tmp_path, copy, good)
    out = proc.stdout + proc.stderr
    assert hidden_characters(out) == [], repr(out)
    assert ("copy: unreadable (status 'zzz?garbage' is not one cnnbench writes)"
            in " ".join(out.split()))
    assert "Glyph" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    assert "[bold]mlp[/oops]?[2J" in out  # shown as the text it is, never as markup
    for name in FILES:
        text = (tmp_path / "out" / name).read_text()
        assert hidden_characters(text) == [], (name, repr(text))
    rows = {r["run"]: r for r in read_csv(tmp_path / "out" / "comparison_runs.csv")}
    assert rows["copy"]["status"] == UNREADABLE and rows["good"]["status"] == COMPLETED
    assert rows["copy"]["reason"] == "status 'zzz?garbage' is not one cnnbench writes"
    assert rows["copy"]["energy_note"] == "no?counter" and rows["copy"]["device"] == "cpu?"
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert "- `copy` (unreadable): status 'zzz?garbage' is not one cnnbench writes" in markdown


def test_a_name_with_a_newline_or_an_escape_is_shown_without_them(cli, tmp_path):
    make_run(tmp_path / "runs", "plain", 0.9, 1)
    make_run(tmp_path / "runs", "two\nlines\x1b[31m", 0.8, 2, config={"optimizer": {"lr": 0.1}})
    proc = compare_at(cli, tmp_path, tmp_path / "runs")
    assert hidden_characters(proc.stdout) == [], repr(proc.stdout)
    names = [r["run"] for r in read_csv(tmp_path / "out" / "comparison_runs.csv")]
    assert names == ["plain", "two lines?[31m"]


def test_a_dollar_sign_or_a_script_the_font_lacks_draws_without_error_or_warning(cli, tmp_path):
    make_run(tmp_path / "runs", "a", 0.9, 1, epochs=2)
    make_run(tmp_path / "runs", "b", 0.8, 2, epochs=2, model="x$\\frac{$y 漢字")
    proc = compare_at(cli, tmp_path, tmp_path / "runs")
    assert "Glyph" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
    for picture in ("comparison.png", "curves.png"):
        assert (tmp_path / "out" / picture).stat().st_size > 1000


@pytest.mark.parametrize("key,value,why", [
    ("test/acc", 5.0, "test/acc 5 is outside 0–1"),
    ("test/acc", -0.5, "test/acc -0.5 is outside 0–1"),
    ("test/macro_f1", 1.5, "test/macro_f1 1.5 is outside 0–1"),
    ("shift/2px", 2.0, "shift/2px 2 is outside 0–1"),
    ("test/loss", -1.0, "test/loss -1 is below 0"),
    ("train_seconds", -3.0, "train_seconds -3 is below 0"),
    ("params", -10, "params -10 is below 0"),
    ("energy_joules", -2.0, "energy_joules -2 is below 0"),
])
def test_a_metric_outside_its_range_is_left_out_and_the_run_unranked(tmp_path, key, value, why):
    make_run(tmp_path, "good", 0.9, 1)
    make_run(tmp_path, "bad", 0.95, 2, **{key: value})
    good, bad = sort_runs(load_runs([tmp_path]))
    assert good.name == "good" and good.in_statistics and not good.out_of_range
    assert bad.name == "bad" and not bad.in_statistics
    assert bad.out_of_range == {key: why} and key not in bad.metrics
    assert key not in bad.extras or bad.extras[key] is None
    assert bad.shown_status == f"completed, {key} out of range"


def test_an_accuracy_of_5_is_never_averaged(cli, tmp_path):
    make_run(tmp_path / "runs", "good", 0.9, 1)
    bad = make_run(tmp_path / "runs", "bad", 0.9, 2)
    edit_metrics(bad, **{"test/acc": 5.0})
    proc = compare_at(cli, tmp_path, tmp_path / "runs")
    text = " ".join(proc.stdout.split())
    assert "300.00%" not in text and "90.00%" in text
    assert ("1 completed run with metrics outside their range (left out of the statistics and "
            "unranked): bad: test/acc 5 is outside 0–1") in text
    (group,) = read_csv(tmp_path / "out" / "comparison.csv")
    assert (group["n"], group["test/acc_mean"]) == ("1", "0.9")
    assert group["left_out_why"] == "completed, test/acc out of range (seed 2)"
    rows = {r["run"]: r for r in read_csv(tmp_path / "out" / "comparison_runs.csv")}
    assert rows["bad"]["test/acc"] == "" and rows["bad"]["reason"] == "test/acc 5 is outside 0–1"
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert "- `bad`: test/acc 5 is outside 0–1" in markdown


def _body(lines: list[str]) -> tuple[str, list[str]]:
    """The header line and the body lines of the runs table (the one with a status column)."""
    start = next(i for i, line in enumerate(lines) if " status " in line and "test acc" in line)
    body = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        body.append(line)
    return lines[start], body


@pytest.mark.parametrize("long_model", [False, True], ids=["nan-run", "nan-run-and-long-model"])
def test_at_80_columns_every_number_of_the_runs_table_is_printed_whole(cli, tmp_path,
                                                                       long_model):
    runs = tmp_path / "runs"
    make_run(runs, "good", 0.9876, 1, secs=0.093, images_per_s=9909.7,
             **{"test/macro_f1": 0.9712})
    nan = make_run(runs, "nanrun", 0.9, 2)
    edit_metrics(nan, **{"test/loss": float("nan"), "test/acc": float("nan"),
                         "test/macro_f1": float("nan"), "train_seconds": float("inf")})
    if long_model:
        make_run(runs, "long", 0.5, 3, model="a_model_whose_name_goes_on_and_on_and_on_v2")
    proc = compare_at(cli, tmp_path, runs)
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    header, body = _body(lines)
    shown = re.split(r" {2,}", header.strip())
    assert "test acc" in shown and "status" in shown
    columns, rows, _ = terminal_rows(sort_runs(load_runs([runs])))
    numeric = [c for c in shown if c in ("test acc", "loss", "macro F1", "params", "train s",
                                         "img/s") or c.startswith("acc ")]
    assert len(body) == len(rows), "\n".join(lines)
    for line, cells in zip(body, rows):
        printed = line.split()
        for column in numeric:
            cell = cells[columns.index(column)]
            if cell:
                assert cell in printed, f"{column} {cell!r} cut in:\n" + "\n".join(lines)
    nan_line = next(line for line in body if "not finite" in line)
    assert "completed, 4 metrics not finite" in nan_line
    four = {"test/loss", "test/acc", "test/macro_f1", "train_seconds"}
    named = re.search(r"nanrun: ([^;]+?) wrote", " ".join(proc.stdout.split()))
    assert named and set(named.group(1).split(", ")) == four, proc.stdout  # below the table
    rows_csv = {r["run"]: r for r in read_csv(tmp_path / "out" / "comparison_runs.csv")}
    assert set(rows_csv["nanrun"]["reason"].removesuffix(" not finite").split(", ")) == four
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    status = re.search(r"\| completed, (.+) not finite \|", markdown)
    assert status and set(status.group(1).split(", ")) == four, markdown


def test_a_terminal_too_narrow_for_the_runs_table_gets_a_paragraph_per_run(cli, tmp_path):
    make_run(tmp_path / "runs", "good", 0.9876, 1)
    nan = make_run(tmp_path / "runs", "nanrun", 0.9, 2)
    edit_metrics(nan, **{"test/loss": float("nan"), "test/acc": float("nan")})
    proc = compare_at(cli, tmp_path, tmp_path / "runs", columns=40)
    assert all(len(line) <= 40 for line in proc.stdout.splitlines()[:-3]), proc.stdout
    text = " ".join(proc.stdout.split())
    assert "1. good (seed=1): completed; test acc 98.76%, loss 0.0124" in text, proc.stdout
    assert "2. nanrun (seed=2): completed, 2 metrics not finite; params 44,426" in text, \
        proc.stdout
