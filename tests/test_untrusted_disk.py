"""Checkpoints and run directories are someone else's files: a real `cnnbench` reads crafted ones,
builds nothing off the allow-lists, runs nothing (a marker file stays absent), takes no memory
for what the file only claims, writes nothing through a planted link, and ends in one paragraph.
The datasets' files: test_untrusted_data_files.py."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers import write_pictures
from test_boundary import TINY, error_line

DEEP = "[" * 5000 + "]" * 5000
LAUGHS = "\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"] + [
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("untrusted")
    run_cli("train", *TINY, "model=mlp", "trainer.epochs=1", f"hydra.run.dir={cwd / 'run'}",
            cwd=cwd, check=True)
    return cwd / "run"


def copied(trained: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    return run


def refused(proc, *words: str) -> str:
    """The command ended in one paragraph (no traceback) that holds `words`."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    line = error_line(out)
    for word in words:
        assert word in line, line
    return line


def planted_checkpoint(run: Path, edit) -> Path:
    """The run's last.pt, changed by `edit(payload)` and saved as torch.save saves it."""
    last = run / "checkpoints" / "last.pt"
    payload = torch.load(last, weights_only=True)
    edit(payload)
    torch.save(payload, last)
    return last


def with_config(text: str):
    def edit(payload):
        payload["config"] = text
    return edit


def with_model(**model):
    def edit(payload):
        cfg = yaml.safe_load(payload["config"])
        cfg["model"] = {**cfg["model"], **model}
        payload["config"] = yaml.safe_dump(cfg)
    return edit


# -- a run directory's .hydra/overrides.yaml, replayed by a resume ------------------------------

@pytest.mark.parametrize("group", ["model", "experiment"])
def test_a_group_choice_that_names_a_yaml_file_elsewhere_is_refused_and_runs_nothing(
        cli, trained, tmp_path, group):
    """Hydra would load ../../evil.yaml as the group's option, and instantiate the callbacks
    it sets: a stored choice must be an option cnnbench ships."""
    run, marker = copied(trained, tmp_path), tmp_path / "pwned"
    (tmp_path / "evil.yaml").write_text(
        f"# @package _global_\nhydra:\n  callbacks:\n    pwn:\n      _target_: os.makedirs\n"
        f"      name: {marker}\n")
    choice = "../" * 40 + str(tmp_path / "evil").lstrip("/")  # from conf/<group>/ to /, on
    overrides = [*TINY, "model=mlp", "trainer.epochs=1", f"{group}={choice}"]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    refused(proc, "overrides.yaml is not trusted", f"is not one of the {group} options "
                                                   f"cnnbench ships")
    assert not marker.exists()


def test_overrides_nested_thousands_deep_are_one_paragraph(cli, trained, tmp_path):
    run = copied(trained, tmp_path)
    (run / ".hydra" / "overrides.yaml").write_text(f"- {DEEP}\n")
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    refused(proc, "overrides.yaml cannot be read (it nests deeper than 64 levels)")


def test_overrides_that_ask_for_a_model_of_16_tb_are_refused_before_it_is_built(
        cli, trained, tmp_path):
    run = copied(trained, tmp_path)
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    (run / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([*overrides, "model.hidden=[1000000,1000000]"]))
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    refused(proc, "does not fit this model", "where the model has 1000000x784")


# -- the config stored in a checkpoint -----------------------------------------------------------

@pytest.mark.parametrize("command,edit,words", [
    ("eval", with_config(f"dataset: {{name: synthetic}}\nmodel: {DEEP}\n"),
     "it nests deeper than 64 levels"),
    ("eval", with_config(f"dataset: {{name: synthetic}}\n{LAUGHS}\n"),
     "it holds a YAML anchor (&l0), which cnnbench never writes"),
    ("eval", with_config("dataset: {name: synthetic}\nx: " + "y" * (17 << 20) + "\n"),
     "bytes, more than the 16,777,216 cnnbench reads"),
    ("eval", with_model(_target_="torch.nn.Linear", in_features=784, out_features=10),
     "model._target_='torch.nn.Linear' is refused"),
    ("eval", with_model(activation="${oc.create:{a: 1}}"), "would run a resolver"),
])
def test_a_stored_config_is_read_as_bounded_plain_data(cli, trained, tmp_path, command, edit,
                                                       words):
    checkpoint = planted_checkpoint(copied(trained, tmp_path), edit)
    proc = cli(command, f"checkpoint={checkpoint}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    refused(proc, "is not a checkpoint whose stored config can be trusted", words)
    assert not (tmp_path / "out").exists()


def test_a_python_tag_in_a_stored_config_runs_nothing_in_predict(cli, trained, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = planted_checkpoint(copied(trained, tmp_path), lambda p: p.update(
        config=p["config"] + f"x: !!python/object/apply:os.makedirs ['{marker}']\n"))
    write_pictures(tmp_path / "pictures")
    proc = cli("predict", f"checkpoint={checkpoint}", f"inputs={tmp_path / 'pictures'}",
               cwd=tmp_path)
    refused(proc, "could not determine a constructor for the tag")
    assert not marker.exists()


# -- the checkpoint's entries ----------------------------------------------------------------------

def _ema_of_text(payload):
    payload["ema"] = {"steps": 1, "updates": 1, "shadow": {"1.weight": "text"}}


def _object_inside(marker: Path):
    class Planted:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))

    return lambda payload: payload.update(planted=Planted())


@pytest.mark.parametrize("edit,words", [
    (with_model(hidden=[1000000, 1000000]),
     "1.weight is 200x784 where the model has 1000000x784"),  # 16 TB asked for, none taken
    (lambda p: p.update(model={1: torch.zeros(1)}), "'model' holds a dict where a mapping of "
                                                    "weight names to tensors belongs"),
    (_ema_of_text, "'ema' holds a dict where the weight average"),
    (lambda p: p["options"].update(dataset="x\x1b]52;c;cm0gLXJmIH4=\x07"),  # sets the clipboard
     "'options' holds a dict where a mapping of the run's choices (plain, printable values)"),
    ("object", "it holds Python objects besides tensors, numbers and text"),
])
def test_eval_refuses_a_doctored_checkpoint_before_it_builds_or_runs_anything(
        cli, trained, tmp_path, edit, words):
    marker = tmp_path / "pwned"
    checkpoint = planted_checkpoint(copied(trained, tmp_path),
                                    _object_inside(marker) if edit == "object" else edit)
    proc = cli("eval", f"checkpoint={checkpoint}", cwd=tmp_path)
    refused(proc, words)
    assert not marker.exists() and not (tmp_path / "outputs").exists()
    assert "\x1b" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("edit,words", [
    (lambda p: p["rng"].update(torch="abc"), "'rng' holds a dict where the random generators'"),
    (lambda p: p.update(loader={}), "the data order the checkpoint holds cannot be restored"),
])
def test_a_resume_refuses_a_training_state_it_cannot_restore(cli, trained, tmp_path, edit,
                                                             words):
    run = copied(trained, tmp_path)
    planted = planted_checkpoint(run, edit).read_bytes()
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    refused(proc, words)
    assert (run / "checkpoints" / "last.pt").read_bytes() == planted  # left as it was


# -- files written into a run directory -------------------------------------------------------------

def test_a_resume_never_appends_its_log_through_a_planted_link(cli, trained, tmp_path):
    run, victim = copied(trained, tmp_path), tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (run / "train.log").unlink()
    (run / "train.log").symlink_to(victim)
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    refused(proc, f"{run / 'train.log'} is a symbolic link (to {victim})")
    assert victim.read_text() == "untouched\n"


def test_export_never_writes_through_a_link_in_the_run_directory(cli, trained, tmp_path):
    run, outside = copied(trained, tmp_path), tmp_path / "outside"
    outside.mkdir()
    (run / "export").symlink_to(outside)
    proc = cli("export", f"checkpoint={run}", "format=torchscript", cwd=tmp_path)
    refused(proc, f"{run / 'export'} is a symbolic link", "inside the run directory")
    assert list(outside.iterdir()) == []


def test_a_lock_file_of_any_json_does_not_stop_a_resume(cli, trained, tmp_path):
    run = copied(trained, tmp_path)
    (run / ".cnnbench.lock").write_text('{"pid": 1e999, "host": "x"}')
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2


def test_eval_into_a_folder_whose_record_nests_deep_is_one_paragraph(cli, trained, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.json").write_text(DEEP)
    proc = cli("eval", f"checkpoint={trained}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    refused(proc, "is the record of the training run")


def test_a_pipe_in_place_of_a_history_does_not_hang_a_resume_with_nothing_to_resume(
        cli, trained, tmp_path):
    run = copied(trained, tmp_path)
    (run / "checkpoints" / "last.pt").unlink()
    _replace_with_fifo(run / "history.csv")
    proc = cli("train", f"trainer.resume={run}", cwd=tmp_path, timeout=60)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "1 epoch had finished" in out, out


def test_compare_reads_bombs_devices_and_pipes_as_unreadable_text(cli, trained, tmp_path):
    sweep = tmp_path / "sweep"
    plants = {"deep": lambda r: (r / ".hydra" / "config.yaml").write_text(f"trainer: {DEEP}\n"),
              "laughs": lambda r: (r / ".hydra" / "config.yaml").write_text(LAUGHS),
              "zero": lambda r: _replace_with_link(r / ".hydra" / "config.yaml", "/dev/zero"),
              "pipe": lambda r: _replace_with_fifo(r / ".hydra" / "config.yaml"),
              "json": lambda r: (r / "metrics.json").write_text(DEEP),
              "history pipe": lambda r: _replace_with_fifo(r / "history.csv"),
              "history zero": lambda r: _replace_with_link(r / "history.csv", "/dev/zero"),
              "hash pipe": lambda r: _replace_with_fifo(r / "config_hash")}
    for name, plant in plants.items():
        shutil.copytree(trained, sweep / name)
        plant(sweep / name)
    proc = cli("compare", str(sweep), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert (sweep / "comparison_runs.csv").is_file()


def _replace_with_link(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def _replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_the_library_reads_a_run_whose_files_are_pipes_as_a_run_without_them(trained, tmp_path):
    from cnnbench.api.run import Run

    run = copied(trained, tmp_path)
    _replace_with_fifo(run / "history.csv")
    loaded = Run.load(run)
    _replace_with_fifo(run / "metrics.json")
    assert loaded.history == [] and loaded.metrics == {}  # no hang, nothing made up


@pytest.mark.slow
def test_a_sweep_run_again_over_planted_pipes_refuses_or_goes_on_and_never_hangs(cli, tmp_path):
    sweep = ["-m", "trainer.seed=0,1", *TINY, "model=mlp", "trainer.epochs=1",
             f"hydra.sweep.dir={tmp_path / 'sw'}"]
    cli("train", *sweep, cwd=tmp_path, check=True)
    job = next(p for p in (tmp_path / "sw").iterdir() if p.name.startswith("0_"))
    for path in (tmp_path / "sw" / ".cnnbench_sweep.json", tmp_path / "sw" / "multirun.yaml",
                 job / "config_hash", job / "metrics.json", job / "history.csv"):
        _replace_with_fifo(path)
    line = refused(cli("train", *sweep, cwd=tmp_path, timeout=120), "is a named pipe")
    assert "remove multirun.yaml, then run again" in line, line
    (tmp_path / "sw" / "multirun.yaml").unlink()  # as the paragraph says
    proc = cli("train", *sweep, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 jobs in" in proc.stdout and ": 2 completed" in proc.stdout, proc.stdout


@pytest.mark.slow
def test_a_sweep_run_again_never_writes_through_a_link_planted_in_a_jobs_hydra_folder(
        cli, tmp_path):
    sweep = ["-m", "trainer.seed=0,1", *TINY, "model=mlp", "trainer.epochs=1",
             f"hydra.sweep.dir={tmp_path / 'sw'}"]
    cli("train", *sweep, cwd=tmp_path, check=True)
    job = next(p for p in (tmp_path / "sw").iterdir() if p.name.startswith("0_"))
    metrics = json.loads((job / "metrics.json").read_text())
    (job / "metrics.json").write_text(json.dumps({**metrics, "status": "interrupted"}))
    victim = tmp_path / "victim.txt"
    victim.write_text("mine\n")
    _replace_with_link(job / ".hydra" / "hydra.yaml", str(victim))
    line = refused(cli("train", *sweep, cwd=tmp_path), "is a symbolic link", "remove the link")
    assert victim.read_text() == "mine\n", line  # Hydra wrote nothing through it
    (job / ".hydra" / "hydra.yaml").unlink()  # as the paragraph says
    proc = cli("train", *sweep, cwd=tmp_path)
    assert proc.returncode == 0 and ": 2 completed" in proc.stdout, proc.stdout + proc.stderr
    assert victim.read_text() == "mine\n"
