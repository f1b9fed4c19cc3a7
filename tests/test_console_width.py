"""The training console at 80 columns: an epoch's line and the live bar fit, the log keeps every
field, a busy machine is named, and the CPU threads follow OMP_NUM_THREADS."""
from __future__ import annotations

import io
import json
import re
import time

import pytest
from rich.console import Console

from cnnbench import terminal
from cnnbench.terminal import EpochProgress, busy_note, epoch_line

TINY = ["dataset=synthetic", "trainer.device=cpu", "trainer.epochs=2", "dataset.train_size=128",
        "dataset.test_size=64", "trainer.batch_size=32"]
# the widest values a realistic run shows
ROW = {"epoch": 100, "train/loss": 0.0123, "train/acc": 0.9912, "val/loss": 0.0123,
       "val/acc": 0.9912, "lr": 1e-3, "epoch_seconds": 12.3, "images_per_s": 62345.4}


@pytest.mark.parametrize("seconds,shown", [(12.3, "12.3s"), (65.0, "1m05s")])
def test_an_epoch_line_fits_eighty_columns_with_every_number_that_matters(seconds, shown):
    line = epoch_line({**ROW, "epoch_seconds": seconds}, 100, width=80, best=True)
    assert len(line) <= 80, line
    for field in ("epoch 100/100", "train 0.0123 99.12%", "val 0.0123 99.12%", "lr 1.0e-03",
                  shown, "best"):
        assert field in line, (field, line)


def test_a_wide_terminal_and_the_log_keep_every_field():
    whole = ("epoch 100/100  train loss 0.0123 acc 99.12%  val loss 0.0123 acc 99.12%  "
             "lr 1.0e-03  12.3s  62,345 img/s  best")
    assert epoch_line(ROW, 100, best=True) == whole
    assert epoch_line(ROW, 100, width=200, best=True) == whole


def test_a_narrower_terminal_loses_the_speed_then_the_learning_rate_then_the_time():
    at = {width: epoch_line(ROW, 100, width=width, best=True) for width in (100, 70, 60)}
    assert "img/s" in at[100] and "lr 1.0e-03" in at[100] and len(at[100]) <= 100
    assert "img/s" not in at[70] and "lr" not in at[70] and "12.3s" in at[70]
    assert "12.3s" not in at[60] and "val 0.0123 99.12%" in at[60] and len(at[60]) <= 60


def test_the_live_bar_shows_the_running_loss_and_accuracy_within_eighty_columns():
    console = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    progress = EpochProgress(console)
    assert progress.live
    progress.start(epochs=100, batches=12345)
    progress.new_epoch(100)
    progress.first_report = (1, 0.0)  # the time estimate is not what this test looks at
    progress.estimated = True
    progress.batch(6000, 0.0123, 0.9912, 62345.4)
    progress.batch(6001, 0.0456, 0.9876, 62345.4)  # updated as the epoch goes
    table = progress.progress.make_tasks_table(progress.progress.tasks)
    lines = ["".join(s.text for s in line).rstrip() for line in console.render_lines(table)]
    assert len(lines) == 1 and len(lines[0]) <= 80, lines
    assert "6001/12345" in lines[0] and "loss 0.0456 acc 98.76%" in lines[0], lines


def test_a_run_at_eighty_columns_shows_fitted_lines_and_logs_them_whole(cli, tmp_path):
    run = tmp_path / "run"
    out = cli("train", *TINY, f"hydra.run.dir={run}", cwd=tmp_path, env={"COLUMNS": "80"},
              check=True).stdout
    shown = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in shown] == ["1/2", "2/2"]
    assert all(len(line) <= 80 and "val " in line for line in shown), shown
    log = (run / "train.log").read_text()
    logged = [line.split("] ", 1)[1] for line in log.splitlines() if "] epoch " in line]
    assert len(logged) == 2 and all("train loss" in line and "img/s" in line for line in logged)


def test_a_busy_machine_is_named_and_an_idle_one_is_not():
    assert busy_note(5.2, 2) == ("the machine is busy: load 5.2 on 2 cores; this run may be "
                                 "slower than usual")
    assert busy_note(1.9, 2) is None and busy_note(None, 2) is None and busy_note(6.0, 8) is None


def piped_progress(monkeypatch, load: tuple[float, int], epochs: int,
                   batches: int) -> tuple[EpochProgress, io.StringIO]:
    """An epoch progress printing to a pipe 80 columns wide, on a machine of this load."""
    out = io.StringIO()
    monkeypatch.setattr(terminal, "machine_load", lambda: load)
    progress = EpochProgress(Console(file=out, force_terminal=False, width=80))
    progress.start(epochs=epochs, batches=batches)
    return progress, out


def test_the_busy_note_comes_next_to_the_time_estimate(monkeypatch):
    progress, out = piped_progress(monkeypatch, (5.2, 2), epochs=2, batches=100)
    progress.new_epoch(1)
    progress.batch(5, 0.5, 0.8, 1000.0)
    progress.batch(10, 0.5, 0.8, 1000.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "should take about" in lines[0]
    assert lines[1] == busy_note(5.2, 2) and len(lines[1]) <= 80


def test_omp_num_threads_sets_the_threads_a_cpu_run_uses_and_says_so(cli, tmp_path):
    run = tmp_path / "run"
    out = cli("train", *TINY, "trainer.epochs=1", f"hydra.run.dir={run}", cwd=tmp_path,
              env={"OMP_NUM_THREADS": "1"}, check=True).stdout
    assert json.loads((run / "metrics.json").read_text())["cpu_threads"] == 1
    first = next(line for line in out.splitlines() if line.startswith("cnnbench "))
    assert "cpu (1 thread), AMP off" in first, first


def test_the_estimate_measures_its_pace_inside_one_epoch(monkeypatch):
    """An epoch too short for two reports gives no estimate: a pace measured across the end of
    an epoch would count its validation as batches and promise minutes for seconds."""
    progress, out = piped_progress(monkeypatch, (0.1, 2), epochs=30, batches=25)
    progress.new_epoch(1)
    progress.batch(12, 0.5, 0.8, 1000.0)
    time.sleep(0.3)  # the rest of the epoch and its validation
    progress.new_epoch(2)
    progress.batch(12, 0.5, 0.8, 1000.0)
    assert "should take about" not in out.getvalue()
    progress.batch(24, 0.5, 0.8, 1000.0)
    estimate = next(line for line in out.getvalue().splitlines() if "should take" in line)
    seconds = re.search(r"29 epochs to go should take about (\d+) s ", estimate)
    assert seconds and int(seconds.group(1)) < 10, estimate
