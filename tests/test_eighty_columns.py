"""What the commands print, read at 80 columns, piped and on a terminal: every help text wraps
within the width; `cnnbench data` keeps its table titles short (a long title is squeezed into
its table's columns) and a long class name whole; a run's per-class table keeps a long class
name whole and its shift robustness line never parts a shift from its accuracy; `cnnbench
predict` never parts a class from its probability; `cnnbench models` says what its 'source 000'
means and uses no word of how the project is made."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnbench.cli import main

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG_CLASS = "a_class_folder_whose_name_is_longer_than_its_table_column"
SHORT_CLASSES = ("bird", "cat", "dog", "fish", "horse")
TERMINAL = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "TTY_INTERACTIVE": "0"}  # rich: a terminal
SHIFTS = [1, 2, 3, 4, 5, 6, 7, 8]
SHIFT_PART = r"\d+ px \d+\.\d\d%"


def shown(text: str) -> list[str]:
    return [ANSI.sub("", line).rstrip() for line in text.splitlines()]


def too_wide(lines: list[str], *paths: Path) -> list[str]:
    """The lines wider than 80 columns, but for those that hold one of `paths` (a path is
    printed whole, on its own line)."""
    return [line for line in lines if len(line) > 80 and not any(str(p) in line for p in paths)]


def first_column(lines: list[str]) -> str:
    """The first column of the box tables in `lines`, its wrapped cells joined."""
    return "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))


def write_pngs(folder: Path, names: list[str], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """An image folder of six classes, one of them named longer than a table column."""
    root = tmp_path_factory.mktemp("eighty") / "photos"
    for k, name in enumerate([*SHORT_CLASSES, LONG_CLASS]):
        write_pngs(root / name, [f"{i}.png" for i in range(8)], seed=k)
    return root


@pytest.fixture(scope="module")
def trained(photos) -> tuple[Path, list[str]]:
    """A one-epoch MLP on `photos`, run at 80 columns: its run directory and what it printed."""
    from conftest import run_cli

    run = photos.parent / "run"
    proc = run_cli("train", "dataset=imagefolder", f"dataset.path={photos}",
                   "dataset.image_size=16", "model=mlp", "trainer.epochs=1", "trainer.device=cpu",
                   f"evaluation.shifts=[{','.join(map(str, SHIFTS))}]", f"hydra.run.dir={run}",
                   cwd=photos.parent, env={"COLUMNS": "80"}, check=True)
    return run, shown(proc.stdout)


@pytest.mark.parametrize("command", ["eval", "predict", "export", "compare", "data", "lr-find",
                                     "models"])
def test_every_commands_help_fits_eighty_columns(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command, "--help"]) == 0
    lines = shown(capsys.readouterr().out)
    assert len(lines) > 5 and lines[0].startswith(f"usage: cnnbench {command}"), lines[:2]
    assert not too_wide(lines), too_wide(lines)


def test_the_lines_train_help_adds_to_hydras_fit_eighty_columns(cli, tmp_path):
    out = cli("train", "--help", cwd=tmp_path, env={"COLUMNS": "80"}, check=True).stdout
    ours = out.split("== Configuration groups ==")[0].splitlines()
    ours += out.split("Examples:")[1].splitlines()
    assert len(ours) > 4 and not too_wide(ours), too_wide(ours)


@pytest.mark.parametrize("env", [{}, TERMINAL], ids=["piped", "terminal"])
def test_data_titles_stay_one_line_and_class_names_whole(cli, photos, tmp_path, env):
    proc = cli("data", "dataset=imagefolder", f"dataset.path={photos}", "dataset.image_size=16",
               "out=d", cwd=tmp_path, env={"COLUMNS": "80", **env}, check=True)
    lines = shown(proc.stdout)
    assert not too_wide(lines, photos), too_wide(lines, photos)
    for title in ("Splits, as a run uses them", "Images per class",
                  "Normalization per channel (pixel values in [0, 1])", "Original image sizes"):
        assert title in lines, title  # a whole line: not squeezed into the table's columns
    assert LONG_CLASS in first_column(lines) and "…" not in proc.stdout
    text = " ".join(" ".join(lines).split())
    assert "trainer.val_split=0.1 of the training set is held out for validation" in text
    assert "measured: over the run's train split" in text
    assert {"summary: d/data.json", "samples: d/samples.png"} <= set(lines)


def test_a_runs_per_class_table_and_shift_line_fit_eighty_columns(trained):
    run, lines = trained
    assert not too_wide(lines, run), too_wide(lines, run)
    start = lines.index("Per-class results on the test set")
    table = lines[start:lines.index("shift robustness (test images moved right and down):")]
    assert LONG_CLASS in first_column(table).replace(" *", "") and "…" not in " ".join(lines)
    head = lines.index("shift robustness (test images moved right and down):")
    shifts = []
    for line in lines[head + 1:]:
        if not line.startswith("  "):
            break
        assert re.fullmatch(rf"  {SHIFT_PART}( \| {SHIFT_PART})*( \|)?", line), line
        shifts += re.findall(r"(\d+) px", line)
    assert shifts == [str(k) for k in [0, *SHIFTS]]


def test_predict_never_parts_a_class_from_its_probability(cli, trained, tmp_path):
    run, _ = trained
    write_pngs(tmp_path / "pics", [f"picture_{i}_{'with_a_long_file_name_' * 3}.png"
                                   for i in range(3)])
    proc = cli("predict", f"checkpoint={run}", "inputs=pics", "out=p", cwd=tmp_path,
               env={"COLUMNS": "80"}, check=True)
    lines = shown(proc.stdout)
    assert not too_wide(lines, run), too_wide(lines, run)
    assert any("next 4" in line for line in lines)
    listed = [line.split("│")[4].strip() for line in lines if line.startswith("│")]
    named = [cell for cell in listed if any(re.search(rf"\b{c}\b", cell) for c in SHORT_CLASSES)]
    assert len(named) >= 3, listed
    for cell in named:
        for name in SHORT_CLASSES:
            if re.search(rf"\b{name}\b", cell):
                assert re.search(rf"\b{name} \d+\.\d%", cell), cell
    assert "3 pictures predicted: top 5 classes each" in lines
    assert any(line.startswith("input: ") for line in lines)


def test_models_explain_their_sources_within_eighty_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models", "dataset=mnist"]) == 0
    out = capsys.readouterr().out
    lines = shown(out)
    assert not too_wide(lines), too_wide(lines)
    assert "source 000" in out and "beyond the seeds" not in out
    assert "source 000-004: the course material a model follows; docs/models.md lists them." \
        in lines
