"""Runs hold no nested runs, and a sweep directory holds its own jobs only: train refuses, before
anything is written, a single run inside another run's directory, a sweep at or inside a run's
directory, a sweep inside another sweep's and a sweep over a folder of runs that is no sweep's;
each refusal names a free folder, and the test runs the command with that folder to its end."""
from __future__ import annotations

import re
import shlex

import pytest
from conftest import run_cli
from test_advice_runs import SYNTHETIC, error_line

RUN = [*SYNTHETIC, "model=mlp"]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A finished run (`run`) and a finished sweep (`sweep`), side by side."""
    root = tmp_path_factory.mktemp("places")
    run_cli("train", *RUN, "hydra.run.dir=run", cwd=root, check=True)
    run_cli("train", "-m", "trainer.seed=0,1", *RUN, "hydra.sweep.dir=sweep", cwd=root,
            check=True)
    return root


def advised(line: str, key: str) -> str:
    """The `key=...` value the paragraph advises."""
    found = re.search(rf"e\.g\. {re.escape(key)}=(\S+) ", line)
    assert found, line
    return shlex.split(found.group(1))[0]


@pytest.mark.parametrize("args,key,said", [
    (["hydra.run.dir=run/inner"], "hydra.run.dir", "is inside the run directory"),
    (["-m", "trainer.seed=0,1", "hydra.sweep.dir=run"], "hydra.sweep.dir",
     "is the run directory"),
    (["-m", "trainer.seed=0,1", "hydra.sweep.dir=run/sw"], "hydra.sweep.dir",
     "is inside the run directory"),
    (["-m", "trainer.seed=0,1", "hydra.sweep.dir=sweep/sub"], "hydra.sweep.dir",
     "is inside the sweep directory"),
    (["-m", "trainer.seed=0,1", "hydra.sweep.dir=."], "hydra.sweep.dir",
     "and no sweep's record, and a sweep there would take those runs for its own jobs"),
], ids=["run in a run", "sweep at a run", "sweep in a run", "sweep in a sweep",
        "sweep over a folder of runs"])
def test_a_run_or_sweep_inside_another_is_refused_and_the_folder_it_names_works(
        places, tmp_path, args, key, said):
    root = tmp_path / "copy"
    import shutil

    shutil.copytree(places, root, symlinks=True)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    proc = run_cli("train", *args, *RUN, cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    assert said in line, line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written
    free = advised(line, key)
    again = [a for a in args if not a.startswith(f"{key}=")] + [f"{key}={free}"]
    proc = run_cli("train", *again, *RUN, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hydra.sweep.dir" not in key or (root / free / ".cnnbench_sweep.json").is_file()
    assert "hydra.run.dir" not in key or (root / free / "metrics.json").is_file()


def test_an_evaluation_inside_a_run_directory_is_refused_and_the_folder_it_names_works(
        places, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(places, root, symlinks=True)
    proc = run_cli("eval", "checkpoint=run", "out=run/ev", "trainer.device=cpu", cwd=root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    assert f"out=run/ev is inside the run directory {root / 'run'}" in line, line
    assert not (root / "run" / "ev").exists()
    free = advised(line, "out")
    proc = run_cli("eval", "checkpoint=run", f"out={free}", "trainer.device=cpu", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compared = run_cli("compare", str(root), f"out={tmp_path / 'cmp'}", cwd=root,
                       env={"COLUMNS": "200"})
    assert "ev" in compared.stdout and "evaluation" in compared.stdout, compared.stdout
