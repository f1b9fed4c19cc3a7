"""`cnnbench` command line: subcommands, with everything after `train` handed to Hydra."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from rich.console import Console

from . import __version__

SUBCOMMANDS = {
    "train": "train a model (or a sweep with -m); all Hydra flags and overrides work",
    "models": "list every model with its parameters for a dataset: models dataset=cifar10 \\[--json]",
    "eval": "evaluate a checkpoint on the test set: eval checkpoint=PATH \\[key=value]",
    "compare": "table and plots across runs: compare PATH... \\[--out DIR]",
}
CONFIG_GROUPS = ("dataset", "model", "optimizer", "scheduler", "augmentation", "trainer",
                 "evaluation")


def config_options(groups: tuple[str, ...] = CONFIG_GROUPS) -> dict[str, list[str]]:
    """The options of each config group, read from the packaged conf/ directory."""
    from .config_files import group_options

    return {group: group_options(group) for group in groups}


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
    sweep_dir = None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c")
                   for a in args):
            check_group_choices(args)
            check_output_dir(args)
            args = resume_arguments(args)
            args, sweep_dir = with_sweep_dir(args)
            args = with_distributed_run_dir(args)
        sys.argv = ["cnnbench train", *args]
        make_train_app(outcomes, debug=debug)()
    except KeyboardInterrupt as err:
        sweep_dir = sweep_dir or launched_sweep_dir()
        if sweep_dir is not None:
            report_sweep(console, sweep_dir)
        console.print("[bold yellow]interrupted:[/] the run directory keeps its config, curves, "
                      "last checkpoint and metrics.json (status: interrupted"
                      + ("; jobs that never started say: not started" if sweep_dir else "")
                      + "). Continue it with trainer.resume=<run directory>.")
        return 143 if isinstance(err, Terminated) else 130
    except UserError as err:
        if debug:
            raise
        print_user_error(console, err)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
        from .distributed import destroy

        destroy()
    sweep_dir = sweep_dir or launched_sweep_dir()
    if sweep_dir is not None:  # jobs may have run in other processes: read what they wrote
        outcomes = [status for status, _ in report_sweep(console, sweep_dir)]
    failed = sum(o != "completed" for o in outcomes)
    if failed:
        if sweep_dir is not None:
            console.print(f"[bold red]{failed} of {len(outcomes)} jobs did not complete[/]; "
                          "see their metrics.json.")
        return 1
    return 0


def launched_sweep_dir() -> Path | None:
    """The sweep directory the parallel launcher used, when the command line did not fix one."""
    from .app import launched_sweep_dirs

    return launched_sweep_dirs[-1] if launched_sweep_dirs else None


def report_sweep(console: Console, sweep_dir: Path) -> list[tuple[str, str | None]]:
    outcomes = sweep_outcomes(sweep_dir)
    console.print(sweep_summary(outcomes, sweep_dir), markup=False, highlight=False,
                  soft_wrap=True)
    return outcomes


def sweep_summary(outcomes: list[tuple[str, str | None]], sweep_dir: Path) -> str:
    """E.g. 'sweep: 4 jobs in DIR: 3 completed, 1 failed (killed by signal 9 (SIGKILL; ...))'."""
    reasons: dict[str, list[str]] = {}
    for status, reason in sorted(outcomes, key=lambda o: o[0] != "completed"):
        reasons.setdefault(status, [])
        if reason and reason not in reasons[status] and status not in ("completed",
                                                                        "not started"):
            reasons[status].append(reason if len(reason) <= 120 else reason[:117] + "...")
    parts = []
    for status, texts in reasons.items():
        n = sum(o[0] == status for o in outcomes)
        more = "; ..." if len(texts) > 2 else ""
        parts.append(f"{n} {status}" + (f" ({'; '.join(texts[:2])}{more})" if texts else ""))
    return (f"sweep: {len(outcomes)} job{'s' if len(outcomes) != 1 else ''} in {sweep_dir}"
            + (f": {', '.join(parts)}" if parts else ""))


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


def is_sweep(args: list[str]) -> bool:
    return any(a in ("-m", "--multirun") or a.startswith("hparams_search=") for a in args)


def with_sweep_dir(args: list[str]) -> tuple[list[str], Path | None]:
    """For a sweep, fix its directory up front (unless the user did), so that the outcome of
    every job can be read back afterwards, whichever launcher ran it."""
    if not is_sweep(args):
        return args, None
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "hydra.sweep.dir":
            return args, None if "$" in value else Path(value)
    from .app import stamped

    sweep = Path("outputs") / "multirun" / stamped()
    return [*args, f"hydra.sweep.dir={sweep}"], sweep


def sweep_outcomes(sweep_dir: Path) -> list[tuple[str, str | None]]:
    """(status, reason) of each job of a sweep, from the metrics.json each job wrote. Every job
    directory counts, however deep (a subdir pattern, or override values with '/' before job
    names were made safe, nest them); one without a readable metrics.json did not complete."""
    from .comparison.runs import find_run_dirs, load_run

    if not sweep_dir.is_dir():
        return []
    return [(record.status, record.reason)
            for record in (load_run(job, job.name) for job in find_run_dirs(sweep_dir))]


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
    if command == "models":
        return run_models(rest, console)
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
