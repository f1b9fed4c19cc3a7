"""What a run shows and keeps: a line per epoch, whole paths when piped, train.log filled."""
from __future__ import annotations

import io
import json
import time

from rich.console import Console

from cnnbench import terminal
from cnnbench.terminal import EpochProgress, RunConsole, bar_columns, epoch_line

TINY = ["dataset=synthetic", "trainer.device=cpu", "trainer.epochs=2", "dataset.train_size=128",
        "dataset.test_size=64"]
ROW = {"epoch": 3, "train/loss": 0.12345, "train/acc": 0.9612, "val/loss": 0.11, "val/acc": 0.967,
       "lr": 0.001, "epoch_seconds": 2.104, "images_per_s": 62345.4}


def test_epoch_line_reads_as_a_log_line():
    assert epoch_line(ROW, 10) == ("epoch 3/10  train loss 0.1235 acc 96.12%  val loss 0.1100 "
                                   "acc 96.70%  lr 1.0e-03  2.10s  62,345 img/s")
    no_val = epoch_line({**ROW, "val/loss": None, "val/acc": None, "epoch_seconds": 31.0}, 10)
    assert "val" not in no_val and "31.0s" in no_val


def test_durations_read_as_a_person_would_say_them():
    assert [terminal.duration(s) for s in (12.4, 150, 5000)] == ["12 s", "2 min", "1 h 23 min"]


def test_the_live_bar_keeps_what_fits():
    assert len(bar_columns(120)) > len(bar_columns(80)) > len(bar_columns(40))


def test_piped_progress_prints_a_line_inside_a_long_epoch(monkeypatch):
    out = io.StringIO()
    progress = EpochProgress(Console(file=out, force_terminal=False, width=80))
    assert progress.piped and not progress.live
    progress.start(epochs=2, batches=100)
    progress.new_epoch(1)
    progress.batch(5, 0.5, 0.8, 1000.0)
    progress.batch(10, 0.5, 0.8, 1000.0)  # the second report: how long the run should take
    assert out.getvalue().startswith("10 batches in ") and "the 2 epochs to go should take " \
        "about" in out.getvalue() and out.getvalue().count("\n") == 1
    progress.batch(20, 0.5, 0.8, 1000.0)
    assert out.getvalue().count("\n") == 1  # not yet: at most one line every PIPED_EVERY_S
    monkeypatch.setattr(terminal, "PIPED_EVERY_S", 0.0)
    progress.batch(50, 0.5, 0.8, 1234.0)
    assert "epoch 1/2: 50/100 batches (50%), loss 0.5000 acc 80.00% 1,234 img/s" in out.getvalue()


def test_a_console_line_is_logged_once_as_plain_text(caplog):
    out = io.StringIO()
    console = RunConsole(label="job 4", logged=True, file=out, force_terminal=False, width=60)
    quiet = RunConsole(file=io.StringIO(), force_terminal=False)  # the command's own console
    with caplog.at_level("INFO", logger=terminal.LOGGER):
        console.print("[bold]epoch 1/2[/] " + "x" * 100)
        quiet.print("sweep: 4 jobs")
    assert out.getvalue().count("\n") == 1  # piped: a long line is not wrapped at the width
    assert [r.getMessage() for r in caplog.records] == ["[job 4] epoch 1/2 " + "x" * 100]


def test_piped_run_prints_whole_paths_and_keeps_its_story_in_train_log(cli, tmp_path):
    run_dir = tmp_path / ("a-directory-name-long-enough-to-pass-eighty-columns-" * 2) / "run"
    proc = cli("train", *TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path,
               env={"COLUMNS": "80"}, check=True)
    lines = proc.stdout.splitlines()
    assert f"run directory: {run_dir}" in lines
    assert any(line.startswith("cnnbench lenet on synthetic") and line.endswith(str(run_dir))
               for line in lines)
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    log = (run_dir / "train.log").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    logged = [line.split("] ", 1)[1] for line in log.splitlines() if "] epoch " in line]
    assert [line.split()[1] for line in logged] == ["1/2", "2/2"]
    assert all("train loss" in line and "img/s" in line for line in logged)  # every field
    for text in (f"run directory: {run_dir}",
                 f"test accuracy │ {100 * metrics['test/acc']:.2f}%"):
        assert text in log, text
    assert "img/s" in log and "*: the" in log  # the per-class table marks its worst rows


def test_a_sweep_labels_its_jobs_and_ends_each_with_one_line(cli, tmp_path):
    proc = cli("train", "-m", *TINY, "trainer.epochs=1", "model=mlp,lenet",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, check=True)
    out = proc.stdout
    assert "[job 0] epoch 1/1" in out and "[job 1] epoch 1/1" in out
    assert "[job 0] mlp on synthetic: completed, test accuracy" in out
    assert "[job 1] lenet on synthetic: completed, test accuracy" in out
    assert "Per-class results" not in out and "test loss" not in out  # no per-job tables


def test_startup_is_measured_from_the_command_and_per_job(tmp_path):
    """A shell that waits before it execs cnnbench, then a sweep of two jobs in one process: the
    wait is not start-up, and the second job's start-up does not include the first job."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "cnnbench", "train", "-m", *TINY, "trainer.epochs=1",
               "model=mlp,lenet", "trainer.progress=false", f"hydra.sweep.dir={sweep}"]
    script = "sleep 3; exec " + " ".join(f"'{a}'" for a in command)
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, capture_output=True,
                   timeout=300)
    cnnbench_wall = time.perf_counter() - started - 3  # the command itself, without the wait
    first, second = (json.loads((d / "metrics.json").read_text())
                     for d in sorted(p for p in sweep.iterdir() if p.is_dir()))
    assert 0 < first["startup_seconds"] < cnnbench_wall
    assert 0 < second["startup_seconds"] < first["startup_seconds"]


def test_a_sweep_ends_with_the_table_of_its_jobs_and_the_printed_compare_works(cli, tmp_path):
    sweep = tmp_path / "sweep"
    out = cli("train", "-m", *TINY, "trainer.epochs=1", "model=mlp,lenet", "trainer.seed=1,2",
              f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=True).stdout
    assert "4 jobs in 2 groups" in out and "vs best" in out
    (advice,) = [line for line in out.splitlines() if line.startswith("pictures and CSV: ")]
    command = advice.removeprefix("pictures and CSV: ").split()
    assert command[:2] == ["cnnbench", "compare"]
    cli(*command[1:], cwd=tmp_path, check=True)
    assert (sweep / "comparison.csv").is_file() and (sweep / "comparison.png").is_file()
    for job in (p for p in sweep.iterdir() if (p / "train.log").is_file()):
        assert "jobs in" not in (job / "train.log").read_text()  # the sweep's lines are its own
    again = cli("train", "-m", *TINY, "trainer.epochs=1", "model=mlp,lenet", "trainer.seed=1,2",
                f"hydra.sweep.dir={sweep}", cwd=tmp_path, check=True).stdout
    assert "skipped 4 completed jobs" in again
    assert again.count("sweep: 4 jobs in") == 1 and "[HYDRA] sweep:" not in again
