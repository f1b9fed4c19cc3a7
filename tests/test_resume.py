"""Resume works from every run the tool can make, or refuses in one paragraph and touches nothing."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnbench.run.resume import resume_command
from cnnbench.settings.overrides import hydra_quote, hydra_unquote

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false"]
ENV = {**os.environ, "COLUMNS": "120", "PYTHONUNBUFFERED": "1",
       "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def snapshot(run: Path) -> dict[str, str]:
    """Every file under `run` (hidden ones too) with the hash of its bytes."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file()}


def shell(command: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def history(run: Path) -> list[dict]:
    return list(csv.DictReader(open(run / "history.csv")))


def one_paragraph_error(proc: subprocess.CompletedProcess) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert text.strip().startswith("error:") and "\n" not in text.strip(), text
    return " ".join(text.split())


@pytest.mark.parametrize("text", [
    "/runs/0_model=mlp,optimizer=sgd", "/tmp/josé dir/it's \"here\"", "a\\", "a\\'b", "a'\\",
    "x${y}", "x\\${y}z", "\\\\", "[1,2]", "(x) {y}: z", "$HOME", "a\\\\'\\",
])
def test_hydra_quote_reads_back_as_the_same_string(text):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    quoted = hydra_quote(text)
    value = OverridesParser.create().parse_override(f"trainer.resume={quoted}").value()
    assert OmegaConf.create({"v": value}).v == text  # what the run's config will hold
    assert hydra_unquote(quoted) == text


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A completed 1-epoch run (Adam, the default optimizer) to copy and damage."""
    cwd = tmp_path_factory.mktemp("finished")
    proc = subprocess.run([sys.executable, "-m", "cnnbench", "train", *TINY, "model=mlp",
                           "trainer.epochs=1", "hydra.run.dir=run"], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return cwd / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def test_sweep_job_in_a_non_ascii_folder_resumes_with_the_printed_command(tmp_path):
    cwd = tmp_path / "josé dir"
    cwd.mkdir()
    proc = shell(f"cnnbench train -m {' '.join(TINY)} model=mlp optimizer=sgd trainer.epochs=1 "
                 f"hydra.sweep.dir=sweep", cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = (cwd / "sweep").glob("0_*")
    assert "=" in job.name and "," in job.name and "model=mlp" in job.name
    before = snapshot(job)
    done = subprocess.run([sys.executable, "-m", "cnnbench", "train", f"trainer.resume={job}"],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)  # raw
    assert done.returncode == 0, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "already completed 1 epoch; nothing to do" in text
    assert snapshot(job) == before  # nothing touched
    advice = done.stdout.split("To train it longer: ", 1)[1].strip()
    assert "trainer.epochs=2" in advice
    more = shell(advice, cwd)
    assert more.returncode == 0, more.stdout + more.stderr
    after = metrics(job)
    assert after["status"] == "completed" and after["epochs_run"] == 2
    assert after["resumed_from_epoch"] == 1 and after["optimizer"] == "sgd"
    assert [int(r["epoch"]) for r in history(job)] == [1, 2]
    assert list((cwd / "sweep").glob("0_*")) == [job]  # no new job directory
    seconds = sum(float(r["epoch_seconds"]) for r in history(job))
    assert after["train_seconds"] >= seconds  # both parts counted, not only the last
    assert torch.load(job / "checkpoints" / "last.pt")["train_seconds"] >= seconds


def test_onecycle_run_under_quotes_trains_on_to_more_epochs_on_the_new_curve(tmp_path):
    common = [*TINY, "model=mlp", "scheduler=onecycle", "dataset.train_size=1024"]  # 15 steps
    straight = subprocess.run([sys.executable, "-m", "cnnbench", "train", *common,
                               "trainer.epochs=3", "hydra.run.dir=straight"], cwd=tmp_path,
                              env=ENV, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stdout + straight.stderr
    run = tmp_path / "it's a \"run\" $dir\\" / "0_model=mlp,scheduler=onecycle"
    first = subprocess.run([sys.executable, "-m", "cnnbench", "train", *common,
                            "trainer.epochs=1", f"hydra.run.dir={hydra_quote(str(run))}"],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    more = shell(resume_command(run, "trainer.epochs=3"), tmp_path)
    assert more.returncode == 0, more.stdout + more.stderr  # OneCycleLR ran past total_steps
    assert metrics(run)["status"] == "completed" and metrics(run)["epochs_run"] == 3
    lrs = [float(r["lr"]) for r in history(run)]
    expected = [float(r["lr"]) for r in history(tmp_path / "straight")]
    assert lrs == pytest.approx(expected, rel=1e-9)  # on the 3-epoch curve from where it was


@pytest.mark.parametrize("args,named", [
    (["optimizer.lr=0.05"], "optimizer.lr=0.05 (the run has 0.001)"),
    (["optimizer=sgd"], "optimizer=sgd (the run has 'adam')"),
    (["scheduler=onecycle", "trainer.epochs=3"], "scheduler=onecycle (the run has 'cosine')"),
    (["model.hidden=[10]"], "model.hidden=[10] (the run has [200, 150])"),
    (["trainer.batch_size=32"], "trainer.batch_size=32 (the run has 64)"),
    (["trainer.seed=1", "augmentation=affine"], "trainer.seed=1 (the run has 42), augmentation"),
    (["hydra.run.dir=elsewhere"], "hydra.run.dir=elsewhere"),
    (["trainer.epochs=2", "dataset=mnist"], "dataset=mnist (the run has 'synthetic')"),
])
def test_changed_settings_are_refused_before_anything_is_written(run_copy, cli, args, named):
    before = snapshot(run_copy)
    text = one_paragraph_error(cli("train", f"trainer.resume={run_copy}", *args,
                                   cwd=run_copy.parent))
    assert named in text and "start a new run" in text and "Drop" in text
    assert snapshot(run_copy) == before


def test_an_unknown_key_added_on_resume_is_refused_by_name_before_anything_is_written(
        run_copy, cli):
    before = snapshot(run_copy)
    text = one_paragraph_error(cli("train", f"trainer.resume={run_copy}", "+trainer.foo=1",
                                   cwd=run_copy.parent))
    assert "nothing in cnnbench reads trainer.foo" in text
    assert snapshot(run_copy) == before


def test_repeating_the_runs_own_values_is_not_a_change(finished_run):
    from cnnbench.settings.resume_policy import check_user_overrides, stored_overrides

    stored = stored_overrides(finished_run)
    check_user_overrides(["optimizer=adam", "model=mlp", "optimizer.lr=0.001",
                          "trainer.seed=42", "trainer.batch_size=64", "trainer.epochs=5",
                          "evaluation.shifts=[]", "trainer.device=cpu", "dataset.root=x",
                          "hydra.job_logging.root.level=WARNING"], stored, finished_run)


@pytest.mark.parametrize("entries,offending", [
    ("- hydra.callbacks.x._target_=os.system", "hydra.callbacks.x._target_"),
    ("- model._target_=os.system", "model._target_"),
    ("- +model.foo=1", "+model.foo"),
    ("- ~trainer.seed", "~trainer.seed"),
    ("- hydra/launcher=parallel", "hydra/launcher"),
    ("- optimizer.lr=${oc.env:HOME}", "interpolation"),
    ("- model=mlp\n- 3", "not a string"),
    ("{model: mlp}", "not a YAML list"),
    ("- model@x=mlp", "model@x"),
])
def test_untrusted_overrides_yaml_is_refused(run_copy, cli, entries, offending):
    (run_copy / ".hydra" / "overrides.yaml").write_text(entries + "\n")
    before = snapshot(run_copy)
    text = one_paragraph_error(cli("train", f"trainer.resume={run_copy}", "trainer.epochs=2",
                                   cwd=run_copy.parent))
    assert "overrides.yaml is not trusted" in text and offending in text
    assert snapshot(run_copy) == before


def _truncate(run: Path) -> Path:
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:5000])
    return run


def _without_epoch(run: Path) -> Path:
    last = run / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    del payload["epoch"], payload["optimizer"]
    torch.save(payload, last)
    return run


def _notes(run: Path) -> Path:
    (run / "checkpoints" / "notes.pt").write_text("hello")
    return run / "checkpoints" / "notes.pt"


def _empty(run: Path) -> Path:
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    return run


def _overrides(text: str | None):
    def damage(run: Path) -> Path:
        path = run / ".hydra" / "overrides.yaml"
        path.unlink() if text is None else path.write_text(text)
        return run
    return damage


@pytest.mark.parametrize("damage,expected", [
    (_empty, "is empty (0 bytes)"),
    (_truncate, "is not a cnnbench checkpoint that can be loaded"),
    (_overrides(None), "has no .hydra/overrides.yaml"),
    (_overrides("- [a\n"), "overrides.yaml cannot be read"),
    (_overrides("model=mlp\n"), "not a YAML list"),
    (_without_epoch, "cannot be resumed: it lacks optimizer, epoch"),
    (_notes, "not a cnnbench checkpoint"),
    (lambda run: run / "metrics.json", "not inside a cnnbench run directory"),
])
def test_damaged_run_is_one_paragraph_and_stays_as_it_is(run_copy, cli, damage, expected):
    target = damage(run_copy)
    before = snapshot(run_copy)
    text = one_paragraph_error(cli("train", f"trainer.resume={target}", "trainer.epochs=2",
                                   cwd=run_copy.parent))
    assert expected in text
    assert snapshot(run_copy) == before


def _can_unshare() -> bool:
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"],
                           capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


def _small_file_limit() -> None:  # the fallback: writes past 1 MB fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))


def test_full_disk_while_saving_a_checkpoint_says_so_and_leaves_no_partial_file(tmp_path):
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    train = [sys.executable, "-m", "cnnbench", "train", *TINY, "model=mlp",
             "model.hidden=[500]", "trainer.epochs=2"]  # checkpoint about 4.8 MB
    if _can_unshare():  # a 2 MB disk of its own; copy what it held out before it goes away
        script = ('mount -t tmpfs -o size=2m none "$0" && cd "$0" && "$@"; rc=$?; '
                  'cp -a "$0/run" "$COPY"; exit $rc')
        proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                               script, str(disk), *train, "hydra.run.dir=run"],
                              env={**ENV, "COPY": str(copy)}, capture_output=True, text=True,
                              timeout=300)
    else:
        proc = subprocess.run([*train, "hydra.run.dir=run"], cwd=disk, env=ENV,
                              capture_output=True, text=True, timeout=300,
                              preexec_fn=_small_file_limit)
        shutil.copytree(disk / "run", copy)
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, text
    assert "the disk is full" in text and "checkpoints" in text and "MB" in text
    assert "Traceback" not in text
    assert not list((copy / "checkpoints").glob("*.tmp")), list((copy / "checkpoints").iterdir())
    assert not list((copy / "checkpoints").glob("*.pt"))
    assert metrics(copy)["status"] == "failed"


@pytest.mark.parametrize("entry,kept", [
    ("+search.trial=3", True),           # what a search gives its job: replayed as it is
    ("+search.trial=3;x", False),
    ("+search.trial=${oc.env:HOME}", False),
    ("+search.other=1", False),
    ("+trainer.epochs=1", False),
])
def test_a_search_s_trial_number_is_the_only_prefixed_override_a_resume_replays(entry, kept,
                                                                                tmp_path):
    from cnnbench.errors import UserError
    from cnnbench.settings.resume_policy import vet_override

    if kept:
        assert vet_override(entry, tmp_path / "overrides.yaml") == entry
        return
    with pytest.raises(UserError, match="is not trusted"):
        vet_override(entry, tmp_path / "overrides.yaml")
