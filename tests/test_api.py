"""cnnbench from Python: the same runs as the command line, in this process, raising instead of
exiting, and leaving the process as it found it."""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cnnbench
from cnnbench.api.overrides import as_overrides

TINY = {"model": "mlp", "trainer": {"epochs": 1, "batch_size": 64, "device": "cpu"}}
TINY_ARGS = ["dataset=synthetic", "model=mlp", "dataset.train_size=256", "dataset.test_size=128",
             "trainer.epochs=2", "trainer.batch_size=64", "trainer.device=cpu"]
TIMED = ("epoch_seconds", "images_per_s")


def tiny(**more):
    """TINY with `more` on top: the synthetic dataset is chosen with "dataset=synthetic"."""
    return {**TINY, **more}


def same_numbers(a: dict, b: dict, keys) -> None:
    for key in keys:
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


def test_import_cnnbench_stays_cheap_and_loads_the_api_on_first_use():
    code = ("import sys, cnnbench; assert 'torch' not in sys.modules and 'hydra' not in "
            "sys.modules; assert callable(cnnbench.train) and callable(cnnbench.sweep); "
            "import cnnbench.sweep.outcome; assert callable(cnnbench.sweep); print('ok')")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_api_writes_the_run_the_command_line_writes(tmp_path, cli, monkeypatch):
    (tmp_path / "cli").mkdir()
    cli("train", *TINY_ARGS, "hydra.run.dir=run", cwd=tmp_path / "cli", check=True)
    monkeypatch.chdir(tmp_path)
    run = cnnbench.train(*TINY_ARGS[:4], trainer={"epochs": 2, "batch_size": 64,
                                                  "device": "cpu"}, hydra={"run": {"dir": "api"}})
    ours, theirs = run.metrics, json.loads((tmp_path / "cli/run/metrics.json").read_text())
    assert run.dir == tmp_path / "api" and run.status == "completed"
    same_numbers(ours, theirs, ("test/acc", "test/loss", "test/macro_f1", "params",
                                "epochs_run", "shift/2px"))
    cli_run = cnnbench.Run.load(tmp_path / "cli/run")
    assert len(run.history) == len(cli_run.history) == 2
    for mine, other in zip(run.history, cli_run.history):
        same_numbers(mine, other, [k for k in other if k not in TIMED])
    names = lambda d: sorted(p.name if "events" not in p.name else "events"  # noqa: E731
                             for p in d.rglob("*") if p.name != ".cnnbench.lock")
    assert names(run.dir) == names(tmp_path / "cli/run")
    assert run.checkpoints.best.is_file() and run.checkpoints.last.is_file()
    assert run.confusion_matrix._repr_png_().startswith(b"\x89PNG")
    assert run.curves._repr_png_().startswith(b"\x89PNG")


def test_string_and_keyword_forms_compose_the_same_config(compose):
    typed = ["model=lenet", "dataset=synthetic", "trainer.epochs=3", "evaluation.shifts=[1,3]",
             "optimizer.lr=0.05", "trainer.target_acc=null", "trainer.deterministic=true"]
    keywords = as_overrides([], {"model": "lenet", "dataset": "synthetic",
                                 "trainer": {"epochs": 3, "target_acc": None,
                                             "deterministic": True},
                                 "evaluation": {"shifts": [1, 3]}, "optimizer": {"lr": 0.05}})
    assert compose(typed) == compose(keywords)
    assert compose(as_overrides([{"hydra": {"run": {"dir": "a,b c"}}}], {})) is not None
    assert as_overrides([], {"trainer": {"seed": [1, 2]}}, sweep=True) == ["trainer.seed=1,2"]


def test_a_misspelt_name_raises_the_command_lines_paragraph_and_writes_nothing(
        tmp_path, cli, monkeypatch):
    printed = cli("train", "modle=mlp", cwd=tmp_path).stderr + cli("train", "modle=mlp",
                                                                   cwd=tmp_path).stdout
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cnnbench.CnnbenchError) as caught:
        cnnbench.train(modle="mlp")
    assert isinstance(caught.value, cnnbench.CnnbenchError)
    assert " ".join(str(caught.value).split()) in " ".join(printed.split())
    assert "did you mean model=mlp" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_history_frame_names_pandas_when_it_is_missing(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text('{"status": "completed"}')
    (tmp_path / "history.csv").write_text("epoch,val/acc\n1,0.5\n")
    run = cnnbench.Run.load(tmp_path)
    assert run.history == [{"epoch": 1, "val/acc": 0.5}]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(cnnbench.CnnbenchError, match="pip install pandas"):
        run.history_frame()


def interrupt_after_first_epoch(run_dir: Path) -> threading.Thread:
    """A thread that sends this process SIGINT (Ctrl-C) once the run's first epoch is in its
    history.csv."""
    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            history = run_dir / "history.csv"
            if history.is_file() and len(history.read_text().splitlines()) >= 2:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def ctrl_c_as_in_a_terminal():
    """SIGINT raises KeyboardInterrupt in this process, as in a terminal or a notebook, even when
    the tests were started where it is ignored (nohup, a background job, a CI runner)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_leaves_an_interrupted_run_that_the_next_call_completes(tmp_path, monkeypatch,
                                                                      ctrl_c_as_in_a_terminal):
    monkeypatch.chdir(tmp_path)
    interrupt_after_first_epoch(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt) as caught:
        cnnbench.train("dataset=synthetic",
                       tiny(dataset={"train_size": 1024, "test_size": 64},
                            trainer={"epochs": 6, "device": "cpu"}), hydra={"run": {"dir": "run"}})
    run = caught.value.run
    assert isinstance(caught.value, cnnbench.RunInterrupted)
    assert run.status == "interrupted" and run.checkpoints.last is not None
    assert 1 <= len(run.history) < 6
    assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler or \
        threading.current_thread() is threading.main_thread()
    resumed = cnnbench.train(trainer={"resume": run.dir})
    assert resumed.dir == run.dir and resumed.status == "completed"
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4, 5, 6]


def process_state() -> dict:
    """What a run could leave changed in this process."""
    import torch
    from hydra.core.global_hydra import GlobalHydra

    cudnn = torch.backends.cudnn
    loggers = {name: (tuple(map(id, lg.handlers)), lg.level, lg.propagate, lg.disabled)
               for name, lg in logging.Logger.manager.loggerDict.items()
               if isinstance(lg, logging.Logger) and name in logging.Logger.manager.loggerDict}
    return {
        "python rng": random.getstate(), "numpy rng": np.random.get_state()[1].tobytes(),
        "torch rng": torch.get_rng_state().numpy().tobytes(),
        "threads": torch.get_num_threads(),
        "deterministic": (torch.are_deterministic_algorithms_enabled(),
                          torch.is_deterministic_algorithms_warn_only_enabled()),
        "cudnn": (cudnn.benchmark, cudnn.deterministic, cudnn.enabled),
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM,
                                                     signal.SIGHUP)},
        "root logger": (tuple(map(id, logging.getLogger().handlers)), logging.getLogger().level),
        "loggers": loggers, "cwd": os.getcwd(), "env": dict(os.environ), "argv": list(sys.argv),
        "streams": (id(sys.stdout), id(sys.stderr)),
        "hydra": GlobalHydra.instance().is_initialized()}


def test_ten_calls_in_one_process_leak_nothing(tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    random.seed(5)
    np.random.seed(6)
    torch.manual_seed(7)
    calls = [lambda i: cnnbench.train("dataset=synthetic", tiny(dataset={
        "train_size": 64, "test_size": 32}, trainer={
        "epochs": 1, "device": "cpu", "seed": i, "deterministic": i % 2 == 0}))] * 8
    calls += [lambda i: cnnbench.train(modle="mlp"),
              lambda i: cnnbench.train(trainer={"resume": "nowhere"})]
    for i, call in enumerate(calls):
        before = process_state()
        try:
            call(i)
        except cnnbench.CnnbenchError:
            assert i >= 8
        after = process_state()
        new_loggers = set(after["loggers"]) - set(before["loggers"])
        for name in new_loggers:  # a logger first made by this call holds no handler
            assert after["loggers"][name][0] == (), name
            del after["loggers"][name]
        assert after == before, f"call {i}"


STATS = ("group", "seeds", "n", "left_out", "test/acc_mean", "test/acc_std",
         "test/acc_ci95_low", "test/acc_ci95_high", "vs_best_p", "vs_best", "test/loss_mean",
         "params_mean")
SWEEP = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
         "trainer.epochs=1", "trainer.device=cpu", "evaluation.plots=false"]


def test_sweep_returns_the_rows_compare_prints_and_compare_reads_a_cli_sweep_alike(
        tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cnnbench.sweep(*SWEEP, model=["mlp", "lenet"], trainer={"seed": [1, 2]},
                            hydra={"sweep": {"dir": "api_sweep"}})
    assert len(result.runs) == 4 and {r.status for r in result.runs} == {"completed"}
    assert [row["n"] for row in result.rows] == [2, 2]
    assert result.rows[0]["vs_best"] == "best" and result.rows[1]["vs_best_p"] is not None
    assert result.curves._repr_png_().startswith(b"\x89PNG")
    assert "test acc" in result._repr_html_()
    printed = " ".join(cli("compare", "api_sweep", cwd=tmp_path, check=True).stdout.split())
    shown = [result.columns.index(c) for c in ("model", "seeds", "test acc", "CI95", "vs best")]
    for cells in result.cells:  # the cells of the columns that fit 120 columns: as printed
        assert all(cells[i] in printed for i in shown), cells
    cli("train", "-m", *SWEEP, "model=mlp,lenet", "trainer.seed=1,2", "hydra.sweep.dir=cli_sweep",
        cwd=tmp_path, check=True)
    theirs = cnnbench.compare(tmp_path / "cli_sweep")
    assert [{k: r[k] for k in STATS} for r in theirs.rows] == \
        [{k: r[k] for k in STATS} for r in result.rows]


def test_a_run_predicts_the_users_pictures_as_the_predict_command_does(tmp_path, monkeypatch):
    from helpers import write_pictures

    monkeypatch.chdir(tmp_path)
    pictures = write_pictures(tmp_path / "pictures")
    run = cnnbench.train("dataset=synthetic", tiny(dataset={"train_size": 64, "test_size": 32}),
                         hydra={"run": {"dir": "run"}})
    predicted = run.predict(tmp_path / "pictures", topk=3, out=tmp_path / "predicted")
    assert len(predicted.rows) + len(predicted.skipped) == len(pictures)
    assert all(len(row["ranked"]) == 3 and row["predicted"].startswith("class_")
               for row in predicted.rows)
    assert (tmp_path / "predicted" / "predictions.csv").is_file()
    assert predicted._repr_png_().startswith(b"\x89PNG")
    with pytest.raises(cnnbench.CnnbenchError, match="topk"):
        run.predict(tmp_path / "pictures", topk=0)
