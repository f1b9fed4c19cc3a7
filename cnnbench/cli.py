"""`cnnbench` command line: subcommands, with everything after `train` handed to Hydra."""
from __future__ import annotations

import sys
import os
import signal
from importlib import resources
from pathlib import Path

from rich.console import Console

from . import __version__

SUBCOMMANDS = {
    "train": "train a model (or a sweep with -m); all Hydra flags and overrides work",
}
CONFIG_GROUPS = ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer")


def config_options() -> dict[str, list[str]]:
    """The options of each config group, read from the packaged conf/ directory."""
    from .app import config_root

    path = config_root()
    root = resources.files("cnnbench.conf") if path.startswith("pkg://") else Path(path)
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
    console.print("\n--debug (or HYDRA_FULL_ERROR=1) shows full tracebacks for errors.")
    console.print("\n[bold]Config groups[/] (choose with group=option, e.g. model=mlp):")
    for group, names in config_options().items():
        console.print(f"  {group:<13} {', '.join(names)}")
    console.print(
        "\n[bold]Examples:[/]\n"
        "  cnnbench train model=lenet dataset=mnist optimizer=adam augmentation=affine\n"
        "  cnnbench train -m model=mlp,lenet optimizer=sgd,adam,adadelta trainer.epochs=3\n"
        "  cnnbench train --help            (every option of a training run)\n"
        "  cnnbench train trainer.resume=outputs/runs/<run>   (continue an interrupted run)\n"
        "  tensorboard --logdir outputs\n", highlight=False)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run saves what it has and stops."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated("stopped by SIGTERM")


def check_group_choices(args: list[str]) -> None:
    """`group=option` overrides name options that exist (Hydra's own message lists its search
    path and is easy to miss); sweeps like model=mlp,foo are checked option by option."""
    from .errors import UserError

    options = config_options()
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in options or any(c in value for c in "()[]{}*$"):
            continue
        unknown = [v for v in value.split(",") if v and v not in options[key]]
        if unknown:
            raise UserError(f"There is no {key} option '{unknown[0]}'. The {key} options are: "
                            f"{', '.join(options[key])} (one YAML file each in conf/{key}/).")


def check_output_dir(args: list[str]) -> None:
    """The folder runs are written to must be writable before any training starts."""
    from .errors import UserError

    target = Path("outputs")
    for arg in args:
        key, _, value = arg.partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and "$" not in value:
            target = Path(value)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"Cannot write run outputs to {target.resolve()}: {existing.resolve()} "
                        f"is not writable. Run from a folder you can write to, or choose another "
                        f"place with hydra.run.dir=... (single runs) / hydra.sweep.dir=... (sweeps).")


def run_train(args: list[str], console: Console, debug: bool = False) -> int:
    from .app import make_train_app, print_user_error
    from .errors import UserError
    from .resume import resume_arguments

    outcomes: list[str] = []
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i") for a in args):
            check_group_choices(args)
            check_output_dir(args)
            args = resume_arguments(args)
        sys.argv = ["cnnbench train", *args]
        make_train_app(outcomes, debug=debug)()
    except KeyboardInterrupt as err:
        console.print("[bold yellow]interrupted:[/] the run directory keeps its config, curves, "
                      "last checkpoint and metrics.json (status: interrupted). Continue it with "
                      "trainer.resume=<run directory>.")
        return 143 if isinstance(err, Terminated) else 130
    except UserError as err:
        if debug:
            raise
        print_user_error(console, err)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    if any(o != "completed" for o in outcomes):
        failed = sum(o != "completed" for o in outcomes)
        if len(outcomes) > 1:
            console.print(f"[bold red]{failed} of {len(outcomes)} jobs did not complete[/]; "
                          "see their metrics.json.")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    console = Console()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help(console)
        return 0
    if argv[0] in ("-V", "--version"):
        console.print(f"cnnbench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        return run_train(rest, console, debug)
    console.print(f"[bold red]error:[/] unknown command '{command}'. Commands: "
                  f"{', '.join(SUBCOMMANDS)}. Run `cnnbench --help` for more.", highlight=False)
    return 2


if __name__ == "__main__":
    sys.exit(main())
