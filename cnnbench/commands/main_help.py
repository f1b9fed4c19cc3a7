"""`cnnbench --help`: the commands, config groups, presets and examples, within the console's
width (lists wrap under their own column)."""
from __future__ import annotations

import textwrap

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cnnbench import __version__
from cnnbench.settings.config_files import config_options

SUBCOMMANDS = {
    "train": "train a model (or a sweep with -m); all Hydra flags and overrides work",
    "models": "list every model with its parameters for a dataset: models dataset=cifar10 \\[json=true]",
    "data": "a dataset before training: splits, classes, samples: data dataset=mnist \\[json=true]",
    "eval": "evaluate a checkpoint on the test set: eval checkpoint=PATH \\[key=value]",
    "compare": "runs side by side, seeds as one row: compare PATH... \\[out=DIR] \\[runs=true]",
    "predict": "classify your own pictures: predict checkpoint=PATH inputs=FILES,FOLDERS \\[topk=5]",
    "export": "a model as one file: export checkpoint=PATH format=onnx|torchscript \\[out=FILE]",
    "lr-find": "the learning-rate range test of a run: lr-find <train overrides> \\[out=DIR]",
}
def _two_columns(rows: dict[str, str], left: int) -> Table:
    """Names and their text, the text wrapped under itself at the console's width."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=left + 2, no_wrap=True)
    grid.add_column(overflow="fold")
    for name, text in rows.items():
        grid.add_row(f"  {name}", text)
    return grid


def print_help(console: Console) -> None:
    console.print(f"[bold]cnnbench[/] {__version__}: train and benchmark image classifiers.\n")
    console.print("[bold]Usage:[/] cnnbench <command> \\[options]\n")
    console.print("[bold]Commands:[/]")
    console.print(_two_columns(SUBCOMMANDS, 10), highlight=False)
    console.print("\n--debug (or HYDRA_FULL_ERROR=1) shows full tracebacks for errors.")
    console.print("\n[bold]Config groups[/] (choose with group=option, e.g. model=mlp):")
    console.print(_two_columns({g: ", ".join(n) for g, n in config_options().items()}, 13),
                  highlight=False)
    presets = config_options(("experiment",))["experiment"]
    console.print("\n[bold]Experiment presets[/] (experiment=<name>; their sources: the README):")
    console.print(textwrap.fill(", ".join(presets), width=max(40, console.width - 1),
                                initial_indent="  ", subsequent_indent="  "), highlight=False)
    console.print("\n[bold]Examples:[/]")
    for command, note in EXAMPLES:
        line = f"  {command}   {note}" if note else f"  {command}"
        fits = len(line) <= console.width
        console.print(escape(line if fits else f"  {command}\n      {note}"), highlight=False)


EXAMPLES = (
    ("cnnbench train model=lenet dataset=mnist optimizer=adam augmentation=affine", ""),
    ("cnnbench train -m model=mlp,lenet optimizer=sgd,adam,adadelta trainer.epochs=3", ""),
    ("cnnbench train experiment=lenet_mnist trainer.seed=1", ""),
    ("cnnbench models dataset=cifar10", ""),
    ("cnnbench data dataset=imagefolder dataset.path=~/photos", "(splits, classes, samples)"),
    ("cnnbench train --help", "(every option of a training run)"),
    ("cnnbench train trainer.resume=outputs/runs/<run>", "(continue an interrupted run)"),
    ("cnnbench compare outputs/multirun/<sweep>", "(or outputs, or run dirs)"),
    ("cnnbench eval checkpoint=outputs/runs/<run> 'evaluation.shifts=[1,2,4]'", ""),
    ("cnnbench predict checkpoint=outputs/runs/<run> inputs=photos/,scan.png", ""),
    ("cnnbench export checkpoint=outputs/runs/<run> format=onnx", ""),
    ("cnnbench lr-find model=lenet optimizer=sgd", "(then optimizer.lr=<the suggestion>)"),
    ("tensorboard --logdir outputs", ""),
)
