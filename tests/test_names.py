"""A misspelt or unknown name in an override is refused by every command that takes overrides,
in the same one paragraph with the nearest known name, before anything is written; the names
cnnbench knows (config groups, run-options keys the default config leaves out, Hydra's own
settings, experiment presets) keep working."""
from __future__ import annotations

import re

import pytest

TINY = ["dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.batch_size=32", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false", "evaluation.shifts=[]"]

COMMANDS = {
    "train": ["train", *TINY, "trainer.epochs=1"],
    "train -m": ["train", "-m", *TINY, "trainer.epochs=1", "trainer.seed=1,2"],
    "models": ["models", "dataset=synthetic"],
    "data": ["data", "dataset=synthetic"],
    "eval": ["eval", "checkpoint=nothing.pt"],
}
MISTAKES = {
    "modle=mlp": "did you mean model=mlp?",
    "+optimzer=sgd": "did you mean optimizer=sgd?",
    "optimzer.lr=0.1": "did you mean optimizer.lr=0.1?",
    "+unknown=1": "no config group or setting named 'unknown'",
    "+unknown.nested=1": "no config group or setting named 'unknown'",
    "++unknown=1": "no config group or setting named 'unknown'",
    "model=lenett": "model=lenett is not a model; models: alexnet",
    "optimizer.lrr=0.1": "did you mean optimizer.lr?",
    "trainer.epoch=1": "did you mean trainer.epochs?",
    "+trainer.epoch=1": "nothing in cnnbench reads trainer.epoch",
}


def paragraph(proc) -> str:
    text = proc.stdout + proc.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("mistake", MISTAKES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_mistaken_name_is_refused_before_anything_starts(cli, tmp_path, command, mistake):
    proc = cli(*COMMANDS[command], mistake, cwd=tmp_path)
    said = paragraph(proc)
    assert proc.returncode == 2
    assert MISTAKES[mistake] in said, said
    assert not (tmp_path / "outputs").exists()


def test_a_misspelt_option_suggests_the_nearest_one_of_its_own_group(cli, tmp_path):
    said = paragraph(cli("models", "model=lenett", cwd=tmp_path))
    assert "did you mean model=lenet?" in said and "Datasets" not in said
    said = paragraph(cli("train", "-m", "optimizer=sgd,adamm", cwd=tmp_path))
    assert "optimizer=adamm is not an optimizer; optimizers: adadelta, adam" in said
    assert "did you mean optimizer=adam?" in said


def test_a_command_suggests_its_own_options(cli, tmp_path):
    said = paragraph(cli("data", "dataset=synthetic", "sampels=2", cwd=tmp_path))
    assert "did you mean samples=2?" in said


@pytest.mark.parametrize("args, shown", [
    (["+dataset.train_size=64"], "train_size: 64"),      # read by cnnbench, not in the default
    (["+reference=a_book"], "reference: a_book"),
    (["optimizer=sgd", "+optimizer.dampening=0.1"], "dampening: 0.1"),  # SGD's own argument
    (["experiment=lenet_mnist"], "momentum: 0.9"),
    (["+experiment=lenet_mnist"], "momentum: 0.9"),
    (["+model=mlp"], "cnnbench.models.mlp"),
])
def test_names_cnnbench_reads_still_compose(cli, tmp_path, args, shown):
    proc = cli("train", *args, "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shown in proc.stdout


def test_hydra_settings_still_work(cli, tmp_path):
    proc = cli("train", "hydra/launcher=parallel", "hydra.launcher.n_jobs=1", "--cfg", "hydra",
               cwd=tmp_path)
    assert proc.returncode == 0 and "n_jobs: 1" in proc.stdout, proc.stdout + proc.stderr
    proc = cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_models_and_data_take_a_group_choice_with_a_plus(cli, tmp_path):
    proc = cli("models", "+dataset=synthetic", "json=true", cwd=tmp_path)
    assert proc.returncode == 0 and '"dataset": "synthetic"' in proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["eval", "--help"]])
def test_help_quotes_every_example_with_brackets(cli, tmp_path, args):
    text = cli(*args, cwd=tmp_path).stdout
    examples = re.findall(r"\S*=\[\S*", text)
    assert examples and all(e.startswith("'") and e.endswith("'") for e in examples), examples
