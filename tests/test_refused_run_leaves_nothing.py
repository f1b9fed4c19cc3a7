"""A `cnnbench train` refused for a value Hydra composed (a bad number, a missing dataset path)
leaves no folder behind: neither the run's own nor the outputs/runs/ (or a named run's parents)
made on the way to it; a folder that was there before stays."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

REFUSED = {
    "a learning rate that is not finite": ["optimizer.lr=inf"],
    "zero epochs": ["trainer.epochs=0"],
    "an image folder without its path": ["dataset=imagefolder"],
}


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("mistake", sorted(REFUSED))
def test_a_refused_run_in_the_default_folder_leaves_the_current_folder_as_it_was(tmp_path,
                                                                                 mistake):
    proc = run_cli("train", "trainer.device=cpu", *REFUSED[mistake], cwd=tmp_path)
    assert proc.returncode == 2 and "error:" in proc.stdout + proc.stderr, proc.stderr
    assert everything_under(tmp_path) == []


def test_a_refused_run_in_a_named_folder_removes_the_parents_it_made_and_keeps_the_others(
        tmp_path):
    (tmp_path / "kept").mkdir()
    proc = run_cli("train", "trainer.epochs=0", "hydra.run.dir=kept/made/run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert everything_under(tmp_path) == ["kept"]


def test_an_outputs_runs_folder_that_was_there_before_a_refused_run_stays(tmp_path):
    (tmp_path / "outputs" / "runs").mkdir(parents=True)
    proc = run_cli("train", "trainer.epochs=0", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert everything_under(tmp_path) == ["outputs", "outputs/runs"]
