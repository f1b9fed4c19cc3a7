"""Running a sweep again in its directory: each job found by its identity, and what becomes of it
(the decisions, on job directories written by hand; tests/test_sweep_resume.py runs real sweeps)."""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cnnbench import rundir
from cnnbench.settings.identity import config_hash, run_config_hash
from cnnbench.settings.overrides import hydra_unquote
from cnnbench.sweep.advice import continue_command, sweep_continues
from cnnbench.sweep.plan import (
    BUSY,
    NEW,
    RESTART,
    RESUME,
    SKIP,
    SweepBook,
    decide,
    record_summary,
)


def job(sweep: Path, name: str, digest: str, status: str | None, epochs_run: int | None = None,
        checkpoint: bool = False) -> Path:
    """A job directory as a sweep leaves it."""
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("{}\n")
    rundir.write_config_hash(run, digest)
    if status is not None:
        (run / "metrics.json").write_text(json.dumps({"status": status, "epochs_run": epochs_run,
                                                      "best_val_acc": 0.5}))
    if checkpoint:
        (run / "checkpoints").mkdir()
        torch.save({"epoch": epochs_run or 0}, run / "checkpoints" / "last.pt")
    return run


@pytest.mark.parametrize("status,epochs,checkpoint,action,earlier", [
    ("completed", 3, True, SKIP, "completed"),
    ("interrupted", 2, True, RESUME, "interrupted"),
    ("interrupted", 0, True, RESTART, "interrupted"),   # only the epoch-0 snapshot
    ("interrupted", 2, False, RESTART, "interrupted"),  # trainer.checkpoint.save_last=false
    ("failed", 1, True, RESUME, "failed"),              # e.g. killed by the OOM killer
    ("failed", None, False, RESTART, "failed"),         # failed before training
    ("running", 2, True, RESUME, "crashed"),            # its process died without a word
    (None, None, False, RESTART, "crashed"),            # no metrics.json at all
    ("diverged", 4, True, RESTART, "diverged"),         # resuming would replay the divergence
    ("not started", None, False, RESTART, "not started"),
])
def test_what_becomes_of_a_job(tmp_path, status, epochs, checkpoint, action, earlier):
    run = job(tmp_path, "0_x=1", "h", status, epochs, checkpoint)
    decision = decide(run)
    assert (decision.action, decision.earlier, decision.run_dir) == (action, earlier, run)


def test_a_job_another_process_is_writing_is_left_alone(tmp_path):
    run = job(tmp_path, "0_x=1", "h", "running", 2, True)
    (run / rundir.LOCK_FILE).write_text(json.dumps({"pid": os.getppid(),
                                                    "host": socket.gethostname()}))
    assert decide(run).action == BUSY


def test_jobs_are_found_by_identity_and_new_ones_numbered_after_the_others(tmp_path):
    job(tmp_path, "0_seed=1", "a", "completed", 1, True)
    job(tmp_path, "7_seed=2", "b", "interrupted", 1, True)
    job(tmp_path, "3_seed=3", "a", "completed", 1, True)  # a list that repeated a value
    book = SweepBook(tmp_path)
    decisions = book.place(["c", "b", "a", "a", "a"])
    assert [d.action for d in decisions] == [NEW, RESUME, SKIP, SKIP, NEW]
    assert [d.run_dir.name if d.run_dir else None for d in decisions] == \
        [None, "7_seed=2", "0_seed=1", "3_seed=3", None]
    assert [book.take_number(), book.take_number()] == [8, 9]
    assert book.place(["a"])[0].action == NEW  # a later batch: both "a" directories are taken


def test_a_new_sweep_directory_numbers_jobs_from_zero(tmp_path):
    book = SweepBook(tmp_path / "new")
    assert [d.action for d in book.place(["a", "b"])] == [NEW, NEW]
    assert book.take_number() == 0


def test_the_summary_says_what_this_run_of_the_sweep_did():
    jobs = [{"action": SKIP, "earlier": "completed"}] * 2 + [
        {"action": RESUME, "earlier": "interrupted"}, {"action": RESUME, "earlier": "failed"},
        {"action": RESTART, "earlier": "diverged"}, {"action": RESTART, "earlier": "not started"},
        {"action": NEW, "earlier": None}]
    assert record_summary(jobs) == (
        "skipped 2 completed jobs; resumed 2 jobs from their last.pt (1 failed, 1 interrupted); "
        "ran 1 job again from the start (1 diverged); started 1 job that had not started; "
        "1 new job")
    assert record_summary([{"action": NEW, "earlier": None}]) is None  # a sweep's first run


def test_identity_leaves_out_where_and_how_fast_a_run_goes(compose):
    base = ["dataset=synthetic", "model=mlp"]
    same = config_hash(compose(base))
    assert config_hash(compose([*base, "trainer.device=cpu", "trainer.progress=false",
                                "trainer.resume=/x/last.pt", "dataset.root=/data",
                                "trainer.num_workers=0", "trainer.compile=true"])) == same
    for change in ("trainer.epochs=3", "trainer.seed=1", "optimizer=sgd", "+tag=a",
                   "evaluation.plots=false", "trainer.tta_flip=true"):
        assert config_hash(compose([*base, change])) != same, change


def test_identity_of_a_run_that_stored_none_is_read_from_its_config(tmp_path, compose):
    cfg = compose(["dataset=synthetic", "model=mlp", "trainer.epochs=2"])
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    assert run_config_hash(tmp_path) == config_hash(cfg)  # e.g. a sweep made before identities
    rundir.write_config_hash(tmp_path, "stored")
    assert run_config_hash(tmp_path) == "stored"


def test_an_earlier_attempt_is_set_aside_whole(tmp_path):
    run = job(tmp_path, "0_x=1", "h", "diverged", 2, True)
    (run / "history.csv").write_text("epoch\n1\n")
    first = rundir.set_aside(run)
    assert first == run / ".earlier" / "1"
    assert sorted(p.name for p in run.iterdir()) == [".earlier", ".hydra", "config_hash"]
    assert sorted(p.name for p in first.iterdir()) == ["checkpoints", "history.csv",
                                                       "metrics.json"]
    (run / "metrics.json").write_text("{}")
    assert rundir.set_aside(run) == run / ".earlier" / "2"
    assert rundir.set_aside(run) is None  # nothing left to move


def test_a_job_marked_not_started_starts_clean(tmp_path):
    run = job(tmp_path, "0_x=1", "h", "not started")
    rundir.job_starts(run, "h2")
    assert rundir.read_config_hash(run) == "h2"
    assert rundir.read_metrics(run) == {"status": "starting"}  # a failure is recorded over it


@pytest.mark.parametrize("sweep_dir", ["outputs/multirun/2024-01-01_10-00-00_ab12cd",
                                       "sw dir", "it's", "a$b"])
def test_the_command_that_continues_a_sweep(sweep_dir):
    args = ["-m", "model=mlp,lenet", "+tag=a/b", "hydra.sweep.dir=${now:%H}"]
    command = continue_command(args, Path(sweep_dir))
    import shlex

    words = shlex.split(command)
    assert words[:5] == ["cnnbench", "train", "-m", "model=mlp,lenet", "+tag=a/b"]
    assert len(words) == 6 and hydra_unquote(words[5].partition("=")[2]) == sweep_dir


def test_which_sweeps_continue():
    assert sweep_continues(["-m", "model=mlp,lenet"])
    assert sweep_continues(["-m", "hydra/launcher=parallel", "x=1,2"])
    assert not sweep_continues(["hparams_search=lenet_mnist"])
    assert sweep_continues(["-m", "hydra/launcher=slurm"])
    assert sweep_continues(["-m", "hydra/launcher=slurm_local"])
    assert not sweep_continues(["-m", "hydra/launcher=submitit_slurm"])  # Hydra's own
