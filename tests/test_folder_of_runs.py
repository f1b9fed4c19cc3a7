"""A command given a folder of runs (a sweep) where one run belongs says so and names one of
them; a run with no last.pt given to trainer.resume says why and how to start it again. The
commands those messages print run, as printed, to their end."""
from __future__ import annotations

import json
import re
import shlex

import pytest
from conftest import run_cli
from test_boundary import error_line

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.device=cpu", "trainer.epochs=1", "trainer.progress=false",
        "evaluation.plots=false"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    run_cli("train", "-m", *TINY, "trainer.seed=1,2", "hydra.sweep.dir=sw", cwd=cwd, check=True)
    return cwd


def printed_args(line: str, command: str) -> list[str]:
    """The arguments of the `cnnbench <command> ...` the error paragraph names."""
    found = re.search(rf"cnnbench {command} (.*?) ;", line) if command == "train" else \
        re.search(r"e\.g\. (checkpoint=\S+)$", line)
    assert found, line
    return shlex.split(found.group(1))


def test_eval_of_a_sweep_directory_names_a_run_and_that_checkpoint_evaluates(sweep):
    proc = run_cli("eval", "checkpoint=sw", cwd=sweep)
    assert proc.returncode == 2
    line = error_line(proc.stdout + proc.stderr)
    assert "sw is a sweep directory that holds 2 runs, not one run" in line, line
    done = run_cli("eval", *printed_args(line, "eval"), "out=ev", cwd=sweep)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((sweep / "ev" / "metrics.json").read_text())["status"] == "completed"


def test_resuming_a_sweep_directory_names_a_run_and_that_resume_runs(sweep):
    proc = run_cli("train", "trainer.resume=sw", cwd=sweep)
    assert proc.returncode == 2
    line = error_line(proc.stdout + proc.stderr)
    assert "hydra.sweep.dir=sw" in line, line
    done = run_cli("train", *printed_args(line, "train"), cwd=sweep)
    assert done.returncode == 0, done.stdout + done.stderr


def test_resuming_a_run_without_last_pt_prints_a_start_again_command_that_runs(tmp_path):
    run_cli("train", *TINY, "trainer.checkpoint.save_last=false", "hydra.run.dir=one",
            cwd=tmp_path, check=True)
    proc = run_cli("train", "trainer.resume=one", cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith("start it again with:"))
    words = shlex.split(lines[at + 1])
    assert words[:2] == ["cnnbench", "train"] and "hydra.run.dir=one_2" in words, words
    done = run_cli(*words[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "one_2" / "checkpoints" / "last.pt").is_file()
