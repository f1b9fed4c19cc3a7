"""`cnnbench compare` is readable at any width: at 80 columns 11 groups that differ in 9
settings keep the settings that tell them apart, their accuracy, interval, n and verdict, whole
and within the width; setting names are abbreviated (uniquely, with a legend); what is left out
is said once; wider terminals show more. The pictures' labels stay distinct and their epoch
axes tick whole epochs."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from helpers import make_run
from rich.console import Console

from cnnbench.commands.compare.abbrev import abbreviations
from cnnbench.commands.compare.command import compare
from cnnbench.commands.compare.fitting import fit_keys
from cnnbench.commands.compare.group_view import group_report

LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.0003, 0.0001, 0.002, 0.005, 0.02, 0.05]
ACC = re.compile(r"\b\d{2}\.\d\d%")
CI = re.compile(r"\b\d{2,3}\.\d\d–\d{2,3}\.\d\d\b")


@pytest.fixture
def eleven(tmp_path) -> Path:
    """11 groups of 2 seeds, differing in 9 settings (only the learning rate alone tells every
    group apart)."""
    root = tmp_path / "sweep"
    for g, lr in enumerate(LRS):
        config = {"optimizer": {"lr": lr, "weight_decay": [0, 0.0001][g % 2],
                                "momentum": [0.9, 0.95, 0.99][g % 3]},
                  "trainer": {"label_smoothing": [0.0, 0.1][g % 2]},
                  "model": {"activation": ["relu", "gelu", "silu"][g % 3],
                            "dropout": [0.0, 0.25, 0.5, 0.1][g % 4]},
                  "augmentation": {"degrees": [0, 10, 15, 5][g % 4]}}
        for seed in (1, 2):
            make_run(root, f"g{g}_s{seed}", 0.9 + 0.007 * g + 0.003 * seed, seed, config=config,
                     batch_size=[64, 128, 256][g % 3], epochs=[3, 5][g % 2])
    return root


def _print(cli, sweep: Path, tmp_path: Path, columns: int, **env) -> list[str]:
    proc = cli("compare", str(sweep), f"out={tmp_path / 'out'}", cwd=tmp_path,
               env={"COLUMNS": str(columns), **env}, check=True)
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def _table(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The header's column names and the body's rows of the group table, split at runs of
    two or more spaces (a cell never holds two spaces)."""
    start = next(i for i, line in enumerate(lines) if "test acc" in line and "CI95" in line)
    body = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        body.append(re.split(r" {2,}", line.strip()))
    return re.split(r" {2,}", lines[start].strip()), body


def test_eleven_groups_of_nine_settings_fit_80_columns_whole(cli, eleven, tmp_path):
    assert len(compare([eleven], tmp_path / "full").groups) == 11
    lines = _print(cli, eleven, tmp_path, 80)
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    header, rows = _table(lines)
    assert len(rows) == 11 and all(len(row) == len(header) for row in rows)  # no broken cell
    assert {"n", "test acc", "CI95", "vs best"} <= set(header)
    for row in rows:
        assert ACC.fullmatch(row[header.index("test acc")])
        assert CI.fullmatch(row[header.index("CI95")]) and row[header.index("n")] == "2"
    keys = header[:header.index("n")]
    assert keys and len(set(keys)) == len(keys)
    assert len({tuple(row[:len(keys)]) for row in rows}) == 11  # the settings tell rows apart
    (left_out,) = [line for line in lines if line.startswith("left out at 80 columns: ")]
    text = " ".join(" ".join(lines[lines.index(left_out):]).split())
    assert "widen the terminal or read comparison.md or comparison.csv" in text
    start = next(i for i, line in enumerate(lines) if line.startswith("settings: "))
    legend = " ".join(" ".join(lines[start:lines.index(left_out)]).split())
    for key in keys:
        assert key == "lr" or f"{key} = " in legend, key  # each short name explained
    assert "green" not in " ".join(lines).lower()  # piped: no colour, no word on colours


def test_wider_terminals_show_more_columns(cli, eleven, tmp_path):
    widths = {}
    for columns in (80, 120, 200):
        lines = _print(cli, eleven, tmp_path, columns)
        assert all(len(line) <= columns for line in lines)
        header, rows = _table(lines)
        widths[columns] = len(header)
        assert len(rows) == 11 and all(len(row) == len(header) for row in rows)
    assert widths[80] < widths[120] < widths[200]
    assert not any(line.startswith("left out at 200") for line in lines)


def test_a_40_column_terminal_gets_a_paragraph_per_group(cli, eleven, tmp_path):
    lines = _print(cli, eleven, tmp_path, 40)
    out = str(tmp_path / "out")  # a path wider than the terminal is kept whole, on its line
    assert all(len(line) <= 40 for line in lines if out not in line), max(lines, key=len)
    text = " ".join(" ".join(lines).split())
    for g in range(11):
        assert f"{g + 1}. lr=" in text
    assert len(ACC.findall(text)) == 11 and len(CI.findall(text)) == 11


def test_short_names_are_unique_and_fall_back_to_the_full_key():
    assert abbreviations(["optimizer.lr", "trainer.batch_size", "model.hidden"]) == {
        "optimizer.lr": "opt.lr", "trainer.batch_size": "batch", "model.hidden": "model.hidden"}
    clash = abbreviations(["trainer.batch_size", "batch_size", "dataset.name", "data.name"])
    assert len(set(clash.values())) == 4
    assert clash["trainer.batch_size"] == "trainer.batch_size" and clash["batch_size"] == \
        "batch_size" and clash["dataset.name"] == "dataset.name"
    assert abbreviations(["optimizer.lr"]) == abbreviations(["optimizer.lr"])


def test_a_short_name_is_never_the_name_of_another_column():
    short = abbreviations(["trainer.std", "optimizer.lr"], reserved=["n", "std", "test acc"])
    assert short == {"trainer.std": "trainer.std", "optimizer.lr": "opt.lr"}


def test_settings_left_out_first_are_those_the_rows_do_not_need():
    columns = ["a", "b", "c", "acc"]
    rows = [["1", "x", "p", "90%"], ["2", "x", "q", "91%"], ["3", "y", "p", "92%"]]
    keep, dropped = fit_keys(columns, rows, 10, [0, 1, 2, 3], [0, 1, 2])
    assert sorted(dropped) == ["b", "c"] and keep == [0, 3]  # a alone tells the rows apart


@pytest.mark.parametrize("colour", [True, False])
def test_colours_are_explained_only_where_they_are_shown(eleven, tmp_path, colour):
    groups = compare([eleven], tmp_path / "out").groups
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, force_terminal=colour, no_color=not colour,
                      color_system="standard" if colour else None)
    console.print(group_report(groups, "title", 100))
    assert ("green" in buffer.getvalue().lower()) is colour


def test_picture_labels_of_groups_that_differ_only_in_the_last_setting_stay_distinct(tmp_path):
    from cnnbench.commands.compare.curves import curves_figure
    from cnnbench.commands.compare.plots import accuracy_vs_time_figure

    long = {"model": {"activation": "leaky_relu_with_a_long_name",
                      "hidden": [512, 512, 256, 128]},
            "optimizer": {"weight_decay": 0.000123, "momentum": 0.875}}
    for i, (tail, acc) in enumerate(((0.0, 0.97), (0.1, 0.96), (0.2, 0.95))):
        config = {**long, "trainer": {"label_smoothing": tail}}
        if i == 2:
            config = {"trainer": {"label_smoothing": tail}}  # the others differ in the rest
        make_run(tmp_path / "runs", f"r{i}", acc, 1, config=config, epochs=2)
    groups = compare([tmp_path / "runs"], tmp_path / "out").groups
    for fig in (accuracy_vs_time_figure(groups), curves_figure(groups)):
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert len(labels) == 3 and len(set(labels)) == 3
        assert any("smooth=0.1" in label for label in labels)
        assert "…" not in " ".join(labels)
        assert "smooth = trainer.label_smoothing" in fig.legends[0].get_title().get_text()


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_epoch_axes_tick_whole_epochs(tmp_path, epochs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from cnnbench.commands.compare.curves import curves_figure

    make_run(tmp_path / "runs", "a", 0.9, 1, epochs=epochs)
    fig = curves_figure(compare([tmp_path / "runs"], tmp_path / "out").groups)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks == list(range(1, epochs + 1)), ticks


def test_the_api_comparison_text_is_the_table_compare_prints_within_its_width(eleven, tmp_path):
    import cnnbench

    comparison = cnnbench.compare(eleven, out=tmp_path / "api")
    text = comparison.text(80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    header, rows = _table(lines)
    assert len(rows) == 11 and all(len(row) == len(header) for row in rows)
    assert any(line.startswith("left out at 80 columns: ") for line in lines)
    assert "22 runs in 11 groups" in str(comparison)
