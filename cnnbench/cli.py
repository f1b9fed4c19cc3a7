"""`cnnbench` command line: subcommands, with everything after `train` handed to Hydra."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from rich.console import Console

from . import __version__
from .advice import continue_command, interrupted_advice, sweep_continues
from .config_files import config_options
from .sweeps import (is_sweep, launched_sweep_dir, report_failed_jobs, report_sweep,
                     with_sweep_dir)
from .terminal import RunConsole

SUBCOMMANDS = {
    "train": "train a model (or a sweep with -m); all Hydra flags and overrides work",
    "models": "list every model with its parameters for a dataset: models dataset=cifar10 \\[json=true]",
    "eval": "evaluate a checkpoint on the test set: eval checkpoint=PATH \\[key=value]",
    "compare": "runs side by side, seeds as one row: compare PATH... \\[out=DIR] \\[runs=true]",
    "predict": "classify your own pictures: predict checkpoint=PATH inputs=FILES,FOLDERS \\[topk=5]",
    "export": "a model as one file: export checkpoint=PATH format=onnx|torchscript \\[out=FILE]",
}
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
    presets = config_options(("experiment",))["experiment"]
    console.print("\n[bold]Experiment presets[/] (the seed notebooks' setups: experiment=<name>):")
    console.print(f"  {', '.join(presets)}")
    console.print(
        "\n[bold]Examples:[/]\n"
        "  cnnbench train model=lenet dataset=mnist optimizer=adam augmentation=affine\n"
        "  cnnbench train -m model=mlp,lenet optimizer=sgd,adam,adadelta trainer.epochs=3\n"
        "  cnnbench train experiment=lenet_mnist trainer.seed=1\n"
        "  cnnbench models dataset=cifar10\n"
        "  cnnbench train --help            (every option of a training run)\n"
        "  cnnbench train trainer.resume=outputs/runs/<run>   (continue an interrupted run)\n"
        "  cnnbench compare outputs/multirun/<sweep>   (or outputs, or run dirs)\n"
        "  cnnbench eval checkpoint=outputs/runs/<run> evaluation.shifts=\\[1,2,4]\n"
        "  cnnbench predict checkpoint=outputs/runs/<run> inputs=photos/,scan.png\n"
        "  cnnbench export checkpoint=outputs/runs/<run> format=onnx\n"
        "  tensorboard --logdir outputs\n", highlight=False)


def check_single_config(args: list[str]) -> None:
    """`--cfg` prints one composed config, which a sweep (-m) does not have: one paragraph
    instead of Hydra's traceback."""
    from .errors import UserError

    shows = [a for a in args if a in ("--cfg", "-c", "--info", "-i")]
    if shows and any(a in ("-m", "--multirun") for a in args):
        raise UserError(f"{shows[0]} prints the config of one run, and -m makes a sweep of "
                        f"several: drop -m and give one value per option to see a job's config "
                        f"(e.g. cnnbench train model=mlp {shows[0]} job).")


def check_group_choices(args: list[str]) -> None:
    """`group=option` overrides name options that exist (Hydra's own message lists its search
    path and is easy to miss); sweeps like model=mlp,foo are checked option by option."""
    from .errors import UserError

    options = config_options()
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in options or any(c in value for c in "()[]{}*$"):
            continue
        if not value.strip(", "):
            raise UserError(f"{key}= names no option. Choose one of: {', '.join(options[key])} "
                            f"(e.g. {key}={options[key][0]}).")
        unknown = [v for v in value.split(",") if v and v not in options[key]]
        if unknown:
            raise UserError(f"There is no {key} option '{unknown[0]}'. The {key} options are: "
                            f"{', '.join(options[key])} (one YAML file each in conf/{key}/).")


def check_override_syntax(args: list[str]) -> None:
    """Every key=value parses as Hydra's override grammar; a mistake is one paragraph."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from .errors import UserError

    parser = OverridesParser.create()
    sweeping = is_sweep(args)
    for arg in args:
        if arg.startswith("-"):
            continue
        try:
            [override] = parser.parse_overrides([arg])
            if override.is_sweep_override() and not sweeping:
                raise UserError(f"'{arg}' lists several values, which makes a sweep: add -m "
                                f"(cnnbench train -m {arg} ...) to run one job per value, or "
                                f"write a list as key=[a,b] or a string as 'key=\"a,b\"'.")
        except HydraException as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"'{arg}' is not a valid override ({reason}). Write key=value; "
                            f"quote a value that holds spaces, commas or brackets, e.g. "
                            f"'key=\"a,b\"' (https://hydra.cc/docs/advanced/override_grammar/basic/)."
                            ) from None


def check_option_keys(args: list[str]) -> None:
    """trainer.* and evaluation.* keys name options that exist (with a did-you-mean), before
    Hydra's longer message about appending with '+'."""
    import dataclasses

    from .evaluation.settings import EvaluationSettings
    from .settings import TrainerSettings
    from .typed_config import unknown_keys_error

    roots = {"trainer": TrainerSettings, "evaluation": EvaluationSettings}
    for arg in args:
        key, sep, _ = arg.partition("=")
        path = key.split(".")
        if not sep or path[0] not in roots or len(path) < 2:
            continue
        cls = roots[path[0]]
        for depth, name in enumerate(path[1:], start=1):
            known = [f.name for f in dataclasses.fields(cls)]
            if name not in known:
                raise unknown_keys_error(".".join(path[:depth]), [name], known)
            kind = cls.__dataclass_fields__[name].default_factory  # nested groups only
            if kind is dataclasses.MISSING or not dataclasses.is_dataclass(kind):
                break
            cls = kind


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
    from .endings import ending_of
    from .errors import UserError
    from .objective import check_sweep_objective
    from .resume import NothingToResume, resume_arguments, resume_value, run_dir_of
    from .rundir import RunLock

    outcomes: list = []
    typed, sweep_dir = list(args), None
    try:
        check_single_config(args)
        if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c")
                   for a in args):
            check_group_choices(args)
            check_option_keys(args)
            check_output_dir(args)
            resume = resume_value(args)
            resuming = resume is not None
            if resuming:
                RunLock(run_dir_of(resume)).refuse_if_held()
            args = resume_arguments(args)
            check_override_syntax(args)
            check_sweep_objective(args)
            check_run_dir_free(args, resuming)
            if not resuming:  # a resumed sweep job runs alone, in its own directory
                args, sweep_dir = with_sweep_dir(args)
            args = with_distributed_run_dir(args)
        sys.argv = ["cnnbench train", *args]
        # one process at a time runs a sweep (its jobs are found by identity, and taken)
        with RunLock(sweep_dir) if sweep_dir is not None else contextlib.nullcontext():
            make_train_app(outcomes, debug=debug)()
    except NothingToResume as done:
        console.print(str(done), highlight=False, soft_wrap=True, markup=False)
        return 0
    except KeyboardInterrupt as err:
        sweep_dir = sweep_dir or launched_sweep_dir()
        command = None
        if sweep_dir is not None:
            report_sweep(console, sweep_dir)
            command = continue_command(typed, sweep_dir) if sweep_continues(typed) else None
        say(console, interrupted_advice([o.run_dir for o in outcomes], sweep_dir, command))
        return ending_of(err).exit_code
    except UserError as err:
        if debug:
            raise
        print_user_error(console, err)
        return 2
    finally:
        from .distributed import destroy

        destroy()
    sweep_dir = sweep_dir or launched_sweep_dir()
    if sweep_dir is not None:  # jobs may have run in other processes: read what they wrote
        command = continue_command(typed, sweep_dir) if sweep_continues(typed) else None
        return 1 if report_failed_jobs(console, sweep_dir, command) else 0
    return max((o.ending.exit_code for o in outcomes), default=0)  # a mistake 2, a crash 1


def say(console: Console, text: str) -> None:
    """Print, even when the terminal is gone (SIGHUP): the run's files already say it all."""
    try:
        console.print(text, highlight=False, soft_wrap=True)
    except OSError:
        pass


def check_run_dir_free(args: list[str], resuming: bool) -> None:
    """A run directory given on the command line must not hold another run (histories would
    interleave) nor be in use by a live process; a resume may reuse its own directory (its lock
    was checked before the command line was rewritten)."""
    from .errors import UserError
    from .overrides import hydra_unquote, override_key
    from .resume import resume_command
    from .rundir import RunLock, holds_run

    chosen = [a.partition("=")[2] for a in args if override_key(a) == "hydra.run.dir"]
    if not chosen or resuming or is_sweep(args):
        return
    run_dir = Path(hydra_unquote(chosen[-1]))
    RunLock(run_dir).refuse_if_held()
    if holds_run(run_dir):
        raise UserError(f"{run_dir} already holds a run, and a new run would mix its history "
                        f"and checkpoints with that one's. Continue that run with: "
                        f"{resume_command(run_dir)} ; or give a new run its own folder "
                        f"(leave hydra.run.dir out, or choose another one).")


def with_distributed_run_dir(args: list[str]) -> list[str]:
    """Under torchrun every process runs this command; they must share one run directory
    (rank 0 picks it) and only rank 0 writes Hydra's files and log."""
    from . import distributed
    from .errors import UserError

    info = distributed.from_environment()
    if not info.enabled:
        return args
    if is_sweep(args):
        raise UserError("A sweep (-m) cannot run under torchrun: start one torchrun per run, or "
                        "run the sweep without torchrun (hydra/launcher=parallel runs jobs side "
                        "by side).")
    distributed.init_process_group(info)
    chosen = next((a.partition("=")[2] for a in args if a.startswith("hydra.run.dir=")), None)
    if info.is_main and chosen is None:
        from .app import stamped

        chosen = f"outputs/runs/{stamped(f'ddp{info.world_size}')}"
    run_dir = distributed.broadcast_string(chosen, info)
    args = [a for a in args if not a.startswith("hydra.run.dir=")] + [f"hydra.run.dir={run_dir}"]
    if not info.is_main:
        args += ["hydra.output_subdir=null", "hydra/job_logging=disabled",
                 "hydra/hydra_logging=disabled"]
    return args


def complete(args: list[str], console: Console) -> int:
    """`cnnbench train -sc install=bash|zsh` (the script), `-sc query=bash` (its candidates)."""
    from .completion import handle
    from .errors import UserError

    try:
        text = handle(args, list(SUBCOMMANDS))
    except UserError as err:
        from .app import print_user_error

        print_user_error(console, err)
        return 2
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def run_models(args: list[str], console: Console) -> int:
    from .app import print_user_error
    from .errors import UserError
    from .zoo import run_models as list_models

    try:
        return list_models(args, console)
    except UserError as err:
        print_user_error(console, err)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    console = RunConsole()
    from .endings import install_stop_handlers

    install_stop_handlers()  # SIGTERM and SIGHUP end every command as Ctrl-C does
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help(console)
        return 0
    if argv[0] in ("-V", "--version"):
        console.print(f"cnnbench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        return complete(rest, console) if rest[:1] in (["-sc"], ["--shell-completion"]) else \
            run_train(rest, console, debug)
    if command == "models":
        return run_models(rest, console)
    if command == "compare":
        from .comparison.command import main as compare_main

        return compare_main(rest, console)
    if command == "eval":
        from .evaluation.command import main as eval_main

        return eval_main(rest, console)
    if command == "predict":
        from .predict.command import main as predict_main

        return predict_main(rest, console)
    if command == "export":
        from .exporting.command import main as export_main

        return export_main(rest, console)
    console.print(f"[bold red]error:[/] unknown command '{command}'. Commands: "
                  f"{', '.join(SUBCOMMANDS)}. Run `cnnbench --help` for more.", highlight=False)
    return 2


def entry() -> None:
    """The `cnnbench` command: `main`, then a quick exit. Everything a command writes is closed
    and flushed by then (files, TensorBoard, logs), so the interpreter's teardown of torch and
    torch._dynamo (about a second, measured in bench/e2e.py's floor) is skipped."""
    try:
        code = main()
    except SystemExit as err:  # Hydra's own error exit
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
