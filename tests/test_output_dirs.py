"""hydra.run.dir and hydra.sweep.dir are read in one place (settings.output_dirs); a value with
interpolations is resolved before Hydra starts, so every check sees the folder the run writes:
a run named with ${...} cannot fall into a folder that holds a run, nor inside a run, nor
under a file."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from conftest import run_cli
from test_advice_runs import SYNTHETIC, error_line

from cnnbench.commands.train.prechecks import run_dir_to_own, with_resolved_output_dir
from cnnbench.settings.output_dirs import RUN_DIR, SWEEP_DIR, given_dir, given_value

RUN = [*SYNTHETIC, "model=mlp"]
BY_MODEL = "hydra.run.dir=runs/${hydra:runtime.choices.model}"


def test_the_last_value_of_a_key_wins_whatever_its_prefix_or_quotes():
    args = ["hydra.run.dir=a", "++hydra.run.dir='b c'", "-m"]
    assert given_value(args, RUN_DIR) == "'b c'"
    assert given_dir(args, RUN_DIR) == Path("b c")
    assert given_dir(["hydra.run.dir=x/${now:%H}"], RUN_DIR) is None  # not resolved yet
    assert given_value(["model=mlp"], SWEEP_DIR) is None
    literal = "hydra.run.dir='runs/a\\${b}'"  # as a resume quotes a folder named a${b}
    assert given_dir([literal], RUN_DIR) == Path("runs/a${b}")
    assert with_resolved_output_dir([literal]) == [literal]


def test_a_run_directory_with_interpolations_is_resolved_once_and_owned_before_hydra():
    args = with_resolved_output_dir(["model=lenet", BY_MODEL])
    assert args == ["model=lenet", "hydra.run.dir='runs/lenet'"]
    assert run_dir_to_own(args) == Path("runs/lenet")  # its lock is taken before Hydra writes
    plain = ["model=lenet", "hydra.run.dir=runs/x"]
    assert with_resolved_output_dir(plain) == plain


def test_a_sweep_directory_with_interpolations_is_resolved_and_a_run_directory_left_alone():
    args = with_resolved_output_dir(["-m", "model=mlp,lenet", "hydra.sweep.dir=s/${hydra.job.name}",
                                     "hydra.run.dir=r/${now:%H}"])
    assert "hydra.sweep.dir='s/train'" in args and "hydra.run.dir=r/${now:%H}" in args


@pytest.mark.slow
def test_a_run_directory_with_interpolations_that_holds_a_run_is_refused_and_its_advice_works(
        tmp_path):
    run_cli("train", *RUN, BY_MODEL, cwd=tmp_path, check=True)
    events = sorted((tmp_path / "runs" / "mlp").glob("events.out.tfevents.*"))
    proc = run_cli("train", *RUN, BY_MODEL, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    assert "runs/mlp already holds a run" in line, line
    assert sorted((tmp_path / "runs" / "mlp").glob("events.out.tfevents.*")) == events
    advice = line.split("That run completed; train it longer with: ")[1].split(" ;")[0]
    assert advice == "cnnbench train trainer.resume=runs/mlp trainer.epochs=2", line
    again = run_cli(*shlex.split(advice)[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    history = (tmp_path / "runs" / "mlp" / "history.csv").read_text().splitlines()
    assert len(history) == 3, history  # the header, epoch 1 and the epoch the advice added


@pytest.mark.slow
def test_a_run_directory_with_interpolations_inside_a_run_or_under_a_file_is_refused(tmp_path):
    run_cli("train", *RUN, "hydra.run.dir=run", cwd=tmp_path, check=True)
    (tmp_path / "afile").write_text("")
    before = sorted(tmp_path.rglob("*"))
    inside = run_cli("train", *RUN, "hydra.run.dir=run/${now:%Y}", cwd=tmp_path)
    assert inside.returncode == 2 and "is inside the run directory" in error_line(inside)
    under = run_cli("train", *RUN, "hydra.run.dir=afile/${now:%Y}", cwd=tmp_path)
    assert under.returncode == 2 and "afile is a file, not a folder" in error_line(under)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_a_job_directory_outside_its_sweep_or_inside_another_job_is_refused(tmp_path):
    from cnnbench.errors import UserError
    from cnnbench.sweep.plan import check_job_dir

    sweep = tmp_path / "sweep"
    check_job_dir(sweep, sweep / "0", set())
    check_job_dir(sweep, sweep / "a" / "1", {sweep / "a" / "0"})  # side by side
    for job_dir in (tmp_path / "esc0", sweep, sweep / "x" / ".." / ".." / "y"):
        with pytest.raises(UserError, match="not inside the sweep directory"):
            check_job_dir(sweep, job_dir, set())
    for job_dir, claimed in ((sweep / "a" / "b", {sweep / "a"}), (sweep / "a", {sweep / "a" / "b"})):
        with pytest.raises(UserError, match="one inside the other"):
            check_job_dir(sweep, job_dir, claimed)


@pytest.mark.slow
def test_a_sweep_whose_subdir_leaves_its_directory_is_refused_and_its_advice_works(tmp_path):
    sweep = ["-m", "trainer.seed=0,1", *RUN, "hydra.sweep.dir=sw"]
    proc = run_cli("train", *sweep, "hydra.sweep.subdir=../esc${hydra.job.num}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    assert "is not inside the sweep directory" in line, line
    assert not list(tmp_path.glob("esc*"))  # no job ran
    advised = line.split("e.g. ")[1].split(",")[0]
    assert advised == "hydra.sweep.subdir=${hydra.job.num}", line
    again = run_cli("train", *sweep, advised, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 jobs in sw: 2 completed" in again.stdout, again.stdout
    assert (tmp_path / "sw" / "0" / "metrics.json").is_file()


def test_moving_a_runs_hydra_folder_is_refused_before_anything_is_written(tmp_path):
    for value in ("null", "../elsewhere", "cfg"):
        proc = run_cli("train", *RUN, f"hydra.output_subdir={value}", cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"hydra.output_subdir={value} would move" in error_line(proc)
    assert not list(tmp_path.iterdir())


def test_an_empty_run_or_sweep_directory_is_refused_and_the_example_it_gives_works(tmp_path):
    for args in ([*RUN, "hydra.run.dir="], ["-m", "trainer.seed=0,1", *RUN, "hydra.sweep.dir=''"]):
        proc = run_cli("train", *args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "is empty (an unset shell variable?)" in error_line(proc)
    assert not list(tmp_path.iterdir())  # nothing written into the current folder
    example = error_line(proc).split("e.g. ")[1].split(",")[0]
    assert example == "hydra.sweep.dir=outputs/mine", example
    done = run_cli("train", "-m", "trainer.seed=0,1", *RUN, example, cwd=tmp_path)
    assert done.returncode == 0 and ": 2 completed" in done.stdout, done.stdout + done.stderr
