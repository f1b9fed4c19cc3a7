"""Advice the tool prints works: each test provokes a message with a real `cnnbench` process,
then runs what the message advises, as printed, and checks that it succeeds.

- `train -m ... --info` (or --cfg) suggests a command whose flag value Hydra accepts;
- out of memory names only keys the dataset at hand has (dataset.train_size: synthetic alone);
- a search whose study in the storage goes the other way is one paragraph, and another
  hydra.sweeper.study_name then runs;
- a misspelt key added with `+` suggests the key as Hydra takes it (no `+` for a key the config
  has already).
"""
from __future__ import annotations

import re
import shlex

import pytest
from conftest import run_cli, write_idx_set

TINY = ["trainer.device=cpu", "trainer.progress=false", "evaluation.plots=false",
        "trainer.epochs=1"]
SYNTHETIC = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
             "trainer.batch_size=32", *TINY]


def error_line(proc) -> str:
    """The one paragraph of an error: exactly one line starts with `error:`, no traceback."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out
    return lines[0]


def suggestion(line: str) -> str:
    found = re.search(r"did you mean (\S+)\?", line)
    assert found, line
    return found.group(1)


# -- train -m with a flag that prints one config --------------------------------------------

@pytest.mark.parametrize("given", ["--info", "-i", "--cfg", "-c", "--cfg=job", "--info=config"])
def test_a_config_flag_given_to_a_sweep_does_suggest_a_command_that_runs(tmp_path, given):
    flag = given.partition("=")[0]
    proc = run_cli("train", "-m", "model=mlp,lenet", given, cwd=tmp_path)
    line = error_line(proc)
    assert proc.returncode == 2, line
    example = re.search(r"\(e\.g\. cnnbench (train [^)]*)\)", line)
    assert example, line
    advice = shlex.split(example.group(1))
    assert advice[-2] == flag, advice
    again = run_cli(*advice, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "invalid choice" not in again.stderr and "mlp" in again.stdout
    assert not (tmp_path / "outputs").exists()


# -- out of memory ---------------------------------------------------------------------------

def advised_keys(line: str) -> list[str]:
    """The keys the out-of-memory paragraph names, in order."""
    advice = line.split("):", 1)[1]
    return re.findall(r"\b(?:dataset|trainer)\.\w+", advice)


def test_running_out_of_memory_on_mnist_does_name_only_keys_mnist_takes(tmp_path):
    write_idx_set(tmp_path / "mn" / "MNIST" / "raw")
    # resnet18 pools adaptively, so it builds; the batch resized to 100000 pixels cannot be held
    args = ["dataset=mnist", "dataset.root=mn", "model=resnet18", "trainer.batch_size=32", *TINY]
    proc = run_cli("train", *args, "dataset.image_size=100000", "hydra.run.dir=big",
                   cwd=tmp_path)
    line = error_line(proc)
    assert proc.returncode == 1 and "Out of memory" in line, line
    assert "Error executing job" not in proc.stdout + proc.stderr  # no Hydra line before it
    keys = advised_keys(line)
    assert keys == ["dataset.image_size", "trainer.batch_size"], line  # no dataset.train_size
    smaller = {"dataset.image_size": "14", "trainer.batch_size": "16"}
    advice = [a for a in args if a.partition("=")[0] not in keys]
    again = run_cli("train", *advice, *(f"{k}={smaller[k]}" for k in keys),
                    "hydra.run.dir=small", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "small" / "metrics.json").is_file()


@pytest.mark.parametrize("command", ["train", "data"])
def test_running_out_of_memory_on_synthetic_data_does_advise_keys_that_shrink_it(tmp_path,
                                                                                 command):
    args = SYNTHETIC if command == "train" else SYNTHETIC[:3]
    out = "hydra.run.dir=" if command == "train" else "out="
    proc = run_cli(command, *args, "dataset.image_size=100000", f"{out}big", cwd=tmp_path)
    line = error_line(proc)
    assert proc.returncode == 1 and "Out of memory" in line, line
    keys = advised_keys(line)
    expected = ["dataset.image_size", "dataset.train_size", "dataset.test_size"]
    assert keys == expected + (["trainer.batch_size"] if command == "train" else []), line
    smaller = {"dataset.image_size": "16", "dataset.train_size": "96", "dataset.test_size": "48",
               "trainer.batch_size": "16"}
    advice = [a for a in args if a.partition("=")[0] not in keys]
    again = run_cli(command, *advice, *(f"{k}={smaller[k]}" for k in keys), f"{out}small",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    written = tmp_path / "small" / ("metrics.json" if command == "train" else "data.json")
    assert written.is_file()


# -- a search whose study goes the other way -------------------------------------------------

def test_a_study_made_for_the_other_direction_does_refuse_in_one_paragraph_and_advise_a_new_name(
        tmp_path):
    search = ["-m", "hydra/sweeper=cnnbench_optuna", "hydra.sweeper.n_trials=1",
              "optimizer.lr=interval(0.001,0.01)", "model=mlp", *SYNTHETIC,
              f"hydra.sweeper.storage=sqlite:///{tmp_path / 'st.db'}"]
    first = run_cli("train", *search, "hydra.sweeper.study_name=s", "optimized_metric=test/loss",
                    "hydra.sweep.dir=cs1", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    proc = run_cli("train", *search, "hydra.sweeper.study_name=s", "hydra.sweep.dir=cs2",
                   cwd=tmp_path)
    line = error_line(proc)
    assert proc.returncode == 2, line
    assert "made to minimize" in line and "another hydra.sweeper.study_name" in line, line
    assert not (tmp_path / "cs2").exists()
    again = run_cli("train", *search, "hydra.sweeper.study_name=s2", "hydra.sweep.dir=cs2",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 completed" in again.stdout


# -- a misspelt key added with + ---------------------------------------------------------------

@pytest.mark.parametrize("mistake, meant", [
    ("+traner.epochs=1", "trainer.epochs=1"),               # every config has it: no +
    ("++traner.epochs=1", "trainer.epochs=1"),
    ("+traner.early_stopping.patience=3", "trainer.early_stopping.patience=3"),
    ("+optimised_metric=test/acc", "optimized_metric=test/acc"),
    ("+datset.train_size=64", "++dataset.train_size=64"),   # only dataset=synthetic has it
    ("+refrence=a_book", "++reference=a_book"),             # only the presets set it
    ("+traner.foo=1", "+trainer.foo=1"),                    # new: the + stays
    ("+modle=mlp", "model=mlp"),
])
def test_a_misspelt_added_key_does_suggest_it_as_hydra_takes_it(mistake, meant):
    from cnnbench.errors import UserError
    from cnnbench.settings.names import check_override_names

    with pytest.raises(UserError) as err:
        check_override_names([mistake])
    assert f"did you mean {meant}?" in str(err.value), str(err.value)


def test_the_key_suggested_for_a_misspelt_added_key_does_train(tmp_path):
    proc = run_cli("train", *SYNTHETIC[:-1], "+traner.epochs=2", cwd=tmp_path)
    assert proc.returncode == 2
    advice = suggestion(error_line(proc))
    assert advice == "trainer.epochs=2", advice
    again = run_cli("train", *SYNTHETIC[:-1], advice, "hydra.run.dir=run", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    history = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert len(history) == 3, history  # a header and two epochs


@pytest.mark.parametrize("mistake, shown", [
    ("++traner.epochs=3", "epochs: 3"),
    ("+datset.train_size=64", "train_size: 64"),
    ("+refrence=a_book", "reference: a_book"),
])
def test_the_suggested_key_does_compose_with_the_dataset_at_hand(tmp_path, mistake, shown):
    for dataset in ("dataset=synthetic", "dataset=mnist"):
        proc = run_cli("train", dataset, mistake, cwd=tmp_path)
        advice = suggestion(error_line(proc))
        again = run_cli("train", dataset, advice, "--cfg", "job", cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert shown in again.stdout
