"""The checkpoint schema has one owner, run/checkpoint.py: every command that reads a checkpoint
(eval, predict, export, a resumed train) refuses a damaged one in the same paragraph."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from helpers import write_pictures
from test_boundary import TINY, error_line

from cnnbench.errors import UserError
from cnnbench.run.checkpoint import ENTRIES, FORMAT, check_entries, load_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("schema")
    run_cli("train", *TINY, f"hydra.run.dir={cwd / 'run'}", cwd=cwd, check=True)
    return cwd / "run"


def reader_commands(checkpoint: Path, tmp: Path) -> dict[str, list[str]]:
    write_pictures(tmp / "pictures")
    return {
        "eval": ["eval", f"checkpoint={checkpoint}", f"out={tmp / 'eval'}", "trainer.device=cpu"],
        "predict": ["predict", f"checkpoint={checkpoint}", f"inputs={tmp / 'pictures'}",
                    f"out={tmp / 'predict'}", "trainer.device=cpu"],
        "export": ["export", f"checkpoint={checkpoint}", "format=torchscript",
                   f"out={tmp / 'model.pt'}"],
        "resume": ["train", f"trainer.resume={checkpoint}"],
    }


class Planted:
    """A pickled object whose loading would write a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def edited(entry: str, value):
    def damage(good: Path, bad: Path) -> None:
        payload = torch.load(good, weights_only=True)
        payload[entry] = value
        torch.save(payload, bad)
    return damage


def cut_short(good: Path, bad: Path) -> None:
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def pickled_object(good: Path, bad: Path) -> None:
    with bad.open("wb") as f:
        pickle.dump({"format": FORMAT, "x": Planted(bad.parent / "ran")}, f)


DAMAGES = {
    "epoch is text": (edited("epoch", "x"), "'epoch' holds 'x' where a whole number of epochs"),
    "epoch is NaN": (edited("epoch", float("nan")), "'epoch' holds nan where"),
    "options is text": (edited("options", "zzz"), "'options' holds 'zzz' where a mapping"),
    "cut short": (cut_short, "is cut short or damaged"),
    "a pickled object": (pickled_object, "is not a cnnbench checkpoint: "),
}


CASES = [(command, damage) for damage in DAMAGES
         for command in ("eval", "predict", "export", "resume")
         if command == "eval" or damage != "epoch is NaN"]  # one reader for a second value


@pytest.mark.parametrize("command,damage", CASES)
def test_every_command_that_reads_a_checkpoint_refuses_a_damaged_one_in_one_paragraph(
        cli, trained, tmp_path, damage, command):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    last = run / "checkpoints" / "last.pt"
    make, expected = DAMAGES[damage]
    make(trained / "checkpoints" / "last.pt", last)
    proc = cli(*reader_commands(last, tmp_path)[command], cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)
    assert expected in line, line
    assert "weights_only" not in line and "Warning" not in out, out
    assert not (run / "ran").exists()
    assert damage != "a pickled object" or "loading it could run code" in line, line
    if damage != "a pickled object":  # the run's intact best.pt is named as the way out
        assert f"{run / 'checkpoints' / 'best.pt'}" in line, line


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_each_entry_of_the_schema_refuses_a_value_of_the_wrong_kind(tmp_path, entry):
    wrong = "x" if entry != "config" else {"a": 1}
    with pytest.raises(UserError, match=f"'{entry}' holds"):
        check_entries({"format": FORMAT, entry: wrong}, tmp_path / "last.pt")


def test_a_checkpoint_cnnbench_wrote_fits_its_schema(trained):
    for name in ("last.pt", "best.pt"):
        payload = load_checkpoint(trained / "checkpoints" / name)
        assert set(payload) - {"format"} <= set(ENTRIES), set(payload) - set(ENTRIES)
