"""`cnnbench` command line: subcommands, with everything after `train` handed to Hydra."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape

from cnnbench import __version__
from cnnbench.boundary import Scope, guard_output, run_command, say
from cnnbench.commands.main_help import SUBCOMMANDS, print_help
from cnnbench.commands.train.prechecks import (
    checked_train_args,
    hydra_mistake,
    run_dir_to_own,
    runs_root_to_tidy,
)
from cnnbench.commands.train.sweep_report import report_failed_jobs
from cnnbench.faults import Hints
from cnnbench.sweep.advice import interrupted_advice, next_run
from cnnbench.sweep.outcome import report_sweep
from cnnbench.terminal import RunConsole, append_to_log


def raise_crash(outcomes: list) -> None:
    """Raise again the crash of a single run, which its Hydra job returned instead (Hydra
    would print its own line before the CLI's paragraph)."""
    crash = next((o.error for o in outcomes if o.error is not None), None)
    if crash is not None:
        raise crash


@contextlib.contextmanager
def owned_folders(args: list[str], sweep_dir: Path | None) -> Iterator[None]:
    """This process owns the run (or the sweep: its jobs are found by identity, and taken)
    before Hydra writes anything into it, and until it ends; the folders made on the way to it
    and left empty (a refused run's outputs/runs/) are removed when it ends."""
    from cnnbench.rundir import RunLock
    from cnnbench.rundir.made_folders import made_folders

    with contextlib.ExitStack() as owned:
        for folder in (run_dir_to_own(args), sweep_dir):
            if folder is not None:
                owned.enter_context(RunLock(folder))
        if (root := runs_root_to_tidy(args)) is not None:
            owned.enter_context(made_folders(root))
        yield


def run_train(args: list[str], console: Console, debug: bool = False,
              outcomes: list | None = None, reraise: bool = False) -> int:
    """`cnnbench train ARGS`' exit code; each job appends how it ended to `outcomes`. With
    `reraise` (a caller in Python) an interrupt is raised again once the advice is shown."""
    from cnnbench.commands.train.app import make_train_app
    from cnnbench.endings import ending_of
    from cnnbench.engine.dist_env import from_environment
    from cnnbench.errors import UserError
    from cnnbench.run.resume import NothingToResume

    outcomes = [] if outcomes is None else outcomes
    typed, sweep_dir = list(args), None
    try:
        args, sweep_dir = checked_train_args(args)
        sys.argv = ["cnnbench train", *args]
        os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's own errors reach us: one paragraph below
        with owned_folders(args, sweep_dir):
            make_train_app(outcomes, debug=debug)()
        raise_crash(outcomes)  # a single run's crash: its fault's paragraph, or its traceback
    except NothingToResume as done:
        console.print(str(done), highlight=False, soft_wrap=True, markup=False)
        return 0
    except KeyboardInterrupt as err:
        command, search = None, False
        if sweep_dir is not None:
            report_sweep(console, sweep_dir)
            command, search = next_run(typed, sweep_dir)
        advice = interrupted_advice([o.run_dir for o in outcomes], sweep_dir, command, search,
                                    typed)
        main = from_environment().is_main  # under torchrun, rank 0 speaks for the job
        if main:
            say(console, advice)
        if sweep_dir is None and main:  # the run's log keeps the lines it showed, this one too
            for outcome in outcomes:
                append_to_log(outcome.run_dir, advice)
        if reraise:
            raise
        return ending_of(err).exit_code
    except UserError:
        raise
    except Exception as err:
        mistake = hydra_mistake(err)
        if debug or not mistake:
            raise
        raise UserError(str(mistake)) from None
    finally:
        if "torch.distributed" in sys.modules:  # a process group exists only where torch is
            from cnnbench.engine.distributed import destroy

            destroy()
    if sweep_dir is not None:  # jobs may have run in other processes: read what they wrote
        command, search = next_run(typed, sweep_dir)
        return report_failed_jobs(console, sweep_dir, command, search)  # endings' sweep code
    return max((o.ending.exit_code for o in outcomes), default=0)  # a mistake 2, a crash 1



def complete(args: list[str], console: Console) -> int:
    """`cnnbench train -sc install=bash|zsh` (the script), `-sc query=bash` (its candidates)."""
    from cnnbench.commands.completion import handle

    text = handle(args, list(SUBCOMMANDS))
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def train(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    if args[:1] in (["-sc"], ["--shell-completion"]):
        return complete(args, console)
    return run_train(args, console, debug)


def models(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.models import run_models

    return run_models(args, console)


def data(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.data.command import main as data_main

    return data_main(args, console)


def compare(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.compare.command import main as compare_main

    return compare_main(args, console)


def evaluate(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.eval import main as eval_main

    return eval_main(args, console, scope)


def predict(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.predict.command import main as predict_main

    return predict_main(args, console)


def lr_find(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.lr_find.command import main as lr_find_main

    return lr_find_main(args, console)


def export(args: list[str], console: Console, scope: Scope, debug: bool) -> int:
    from cnnbench.commands.export.command import main as export_main

    return export_main(args, console)


SMALLER_DATA = "{smaller data}"  # filled in by `data_hints`, for the dataset at hand
# each subcommand, and what its user can change when the machine runs out of room
COMMANDS: dict[str, tuple[Callable[[list[str], Console, Scope, bool], int], Hints]] = {
    "train": (train, Hints("write the run elsewhere with hydra.run.dir=DIR (a sweep: "
                           "hydra.sweep.dir=DIR)", f"{SMALLER_DATA} or a smaller "
                           f"trainer.batch_size")),
    "models": (models, Hints(smaller="use a smaller dataset.image_size")),
    "data": (data, Hints("write elsewhere with out=DIR", SMALLER_DATA)),
    "compare": (compare, Hints("write elsewhere with out=DIR", "compare fewer runs at once")),
    "eval": (evaluate, Hints("write elsewhere with out=DIR", "use a smaller "
                                                              "trainer.eval_batch_size")),
    "predict": (predict, Hints("write elsewhere with out=DIR", "use a smaller batch_size=N")),
    "export": (export, Hints("write elsewhere with out=FILE")),
    "lr-find": (lr_find, Hints("write elsewhere with out=DIR", f"{SMALLER_DATA} or a smaller "
                               f"trainer.batch_size")),
}


def _file_datasets() -> tuple[str, ...]:
    from cnnbench.data.sizes import RESIZED_ON_DEVICE  # torch-free

    return RESIZED_ON_DEVICE


def smaller_data(args: list[str], command: str = "train") -> str:
    """How to load less data, naming only keys that shrink it for the chosen dataset: only
    dataset=synthetic has a number of images (the others refuse dataset.train_size); a file
    dataset (MNIST, CIFAR) is read whole at its stored size and `dataset.image_size` resizes its
    batches on the device, so for `cnnbench data`, which reads the files, nothing smaller exists."""
    from cnnbench.settings.overrides import hydra_unquote

    chosen = [hydra_unquote(arg.partition("=")[2]) for arg in args
              if arg.partition("=")[0].lstrip("+") == "dataset" and "=" in arg]
    if chosen and chosen[-1] == "synthetic":
        return ("use smaller or fewer images (dataset.image_size, dataset.train_size, "
                "dataset.test_size)")
    if command == "data" and (not chosen or chosen[-1] in _file_datasets()):
        return ("free memory for it (the dataset's files are read whole, at the size they are "
                "stored)")
    return "use smaller images (dataset.image_size)"


def data_hints(hints: Hints, args: list[str], command: str = "train") -> Hints:
    """`hints` with SMALLER_DATA spelt out for the dataset `args` choose."""
    if SMALLER_DATA not in hints.smaller:
        return hints
    return Hints(hints.elsewhere, hints.smaller.replace(SMALLER_DATA,
                                                        smaller_data(args, command)))


def main(argv: list[str] | None = None) -> int:
    """The command's exit code; a closed output (`| head`) silences it, never ends it."""
    restore = guard_output()
    try:
        return dispatch(list(sys.argv[1:] if argv is None else argv))
    finally:
        restore()


def dispatch(argv: list[str]) -> int:
    debug = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    console = RunConsole()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help(console)
        return 0
    if argv[0] in ("-V", "--version"):
        console.print(f"cnnbench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        console.print(f"[bold red]error:[/] unknown command '{escape(command)}'. Commands: "
                      f"{', '.join(SUBCOMMANDS)}. Run `cnnbench --help` for more.",
                      highlight=False)
        return 2
    action, hints = COMMANDS[command]
    hints = data_hints(hints, rest, command)
    # SIGTERM and SIGHUP end every command as Ctrl-C does; every ending is shown one way
    return run_command(lambda scope: action(rest, console, scope, debug), console, debug, hints)


def entry() -> None:
    """The `cnnbench` command: `main`, then a quick exit. Everything a command writes is closed
    and flushed by then (files, TensorBoard, logs), so the interpreter's teardown of torch and
    torch._dynamo (about a second, measured in bench/e2e.py's floor) is skipped."""
    from cnnbench.endings import ending_of

    guard_output()  # to the end of the process: the last flush below included
    try:
        code = main()
    except SystemExit as err:  # Hydra's own error exit
        if isinstance(err.code, str):
            print(err.code, file=sys.stderr)
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except KeyboardInterrupt as err:  # a signal after the command ended: it changes nothing
        code = ending_of(err).exit_code
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
