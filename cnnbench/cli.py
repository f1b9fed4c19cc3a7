"""`cnnbench` command line: subcommands, with everything after `train` handed to Hydra."""
from __future__ import annotations

import os
import sys
from importlib import resources

from rich.console import Console

from . import __version__

SUBCOMMANDS = {
    "train": "train a model (or a sweep with -m); all Hydra flags and overrides work",
    "eval": "evaluate a checkpoint on the test set: eval checkpoint=PATH \\[key=value]",
    "compare": "table and plots across runs: compare PATH... \\[--out DIR]",
}
CONFIG_GROUPS = ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer",
                 "evaluation")


def config_options() -> dict[str, list[str]]:
    """The options of each config group, read from the packaged conf/ directory."""
    root = resources.files("cnnbench.conf")
    options = {}
    for group in CONFIG_GROUPS:
        folder = root / group
        names = sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")) \
            if folder.is_dir() else []
        options[group] = names
    return options


def print_help(console: Console) -> None:
    console.print(f"[bold]cnnbench[/] {__version__}: train and benchmark image classifiers.\n")
    console.print("[bold]Usage:[/] cnnbench <command> \\[options]\n")
    console.print("[bold]Commands:[/]")
    for name, text in SUBCOMMANDS.items():
        console.print(f"  {name:<10} {text}")
    console.print("\n[bold]Config groups[/] (choose with group=option, e.g. model=mlp):")
    for group, names in config_options().items():
        console.print(f"  {group:<13} {', '.join(names)}")
    console.print(
        "\n[bold]Examples:[/]\n"
        "  cnnbench train model=lenet dataset=mnist optimizer=adam augmentation=affine\n"
        "  cnnbench train -m model=mlp,lenet optimizer=sgd,adam,adadelta trainer.epochs=3\n"
        "  cnnbench train --help            (every option of a training run)\n"
        "  cnnbench compare outputs/multirun/<sweep>   (or outputs, or run dirs)\n"
        "  cnnbench eval checkpoint=outputs/runs/<run> evaluation.shifts=\\[1,2,4]\n"
        "  tensorboard --logdir outputs\n", highlight=False)


def run_train(args: list[str], console: Console) -> int:
    from .app import make_train_app, print_user_error
    from .errors import UserError

    outcomes: list[str] = []
    sys.argv = ["cnnbench train", *args]
    try:
        make_train_app(outcomes)()
    except KeyboardInterrupt:
        console.print("[bold yellow]interrupted:[/] the run directory keeps its config, curves, "
                      "last checkpoint and metrics.json (status: interrupted).")
        return 130
    except UserError as err:
        print_user_error(console, err)
        return 2
    if any(o != "completed" for o in outcomes):
        failed = sum(o != "completed" for o in outcomes)
        if len(outcomes) > 1:
            console.print(f"[bold red]{failed} of {len(outcomes)} jobs did not complete[/]; "
                          "see their metrics.json.")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help(console)
        return 0
    if argv[0] in ("-V", "--version"):
        console.print(f"cnnbench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        return run_train(rest, console)
    if command == "compare":
        from .comparison.command import main as compare_main

        return compare_main(rest, console)
    if command == "eval":
        from .evaluation.command import main as eval_main

        return eval_main(rest, console)
    console.print(f"[bold red]error:[/] unknown command '{command}'. Commands: "
                  f"{', '.join(SUBCOMMANDS)}. Run `cnnbench --help` for more.", highlight=False)
    return 2


if __name__ == "__main__":
    sys.exit(main())
