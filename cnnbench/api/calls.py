"""`cnnbench.train` and `cnnbench.sweep`: `cnnbench train` called from Python, by the command's
own code (the same checks, config, run directory and files), in this process, so that torch is
imported once for every call. A mistake raises CnnbenchError; Ctrl-C raises RunInterrupted (a
KeyboardInterrupt) once the run is saved as `interrupted`; the process is left as it was."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from cnnbench.api.comparison import Comparison, compare
from cnnbench.api.errors import CnnbenchError, RunInterrupted, library_errors
from cnnbench.api.isolation import isolated
from cnnbench.api.overrides import as_overrides
from cnnbench.api.run import Run, run_of

LAUNCHERS = {"sequential": None, "parallel": "hydra/launcher=parallel"}


def _train_command(args: list[str]) -> tuple[list[Any], int]:
    """`cnnbench train ARGS` in this process: how each job ended, and the exit code."""
    from cnnbench.cli import COMMANDS, run_train
    from cnnbench.endings import install_stop_handlers
    from cnnbench.terminal import RunConsole

    outcomes: list[Any] = []
    with isolated(), library_errors(COMMANDS["train"][1]):
        # Ctrl-C, SIGTERM and SIGHUP stop the run as on the command line (the main thread only
        # can have signal handlers; the caller's are put back after)
        main = threading.current_thread() is threading.main_thread()
        restore = install_stop_handlers() if main else (lambda: None)
        try:
            code = run_train(args, RunConsole(), outcomes=outcomes, reraise=True)
        except KeyboardInterrupt as err:
            last = run_of(outcomes[-1].run_dir) if outcomes else None
            raise RunInterrupted(str(err) or "stopped by the user (Ctrl-C)", last) from err
        finally:
            restore()
    return outcomes, code


def train(*overrides: str | Mapping[str, Any], **options: Any) -> Run:
    """Train one model as `cnnbench train OVERRIDES` does, and return its Run.

    Overrides as on the command line ("model=lenet", "trainer.epochs=3"), as dicts, or as
    keywords (model="lenet", trainer={"epochs": 3}); `trainer={"resume": run.dir}` continues an
    interrupted run."""
    args = as_overrides(overrides, options)
    outcomes, _ = _train_command(args)
    if outcomes:
        return Run(outcomes[-1].run_dir)
    return _resumed_run(args)


def _resumed_run(args: list[str]) -> Run:
    """A resume of a run that had nothing left to do: that run."""
    from cnnbench.run.resume import resume_value, run_dir_of

    with library_errors():
        resume = resume_value(args)
        if resume is not None:
            return Run.load(run_dir_of(resume))
    raise CnnbenchError(f"`cnnbench train {' '.join(args)}` started no run.")


def sweep(*overrides: str | Mapping[str, Any], launcher: str = "sequential",
          **options: Any) -> Comparison:
    """Run a grid as `cnnbench train -m OVERRIDES` does and return its comparison (what
    `cnnbench compare SWEEP_DIR` prints). A list in the keyword form is the values to sweep:
    sweep(model=["mlp", "lenet"], trainer={"seed": [1, 2]}); on the command line's form, commas
    ("model=mlp,lenet"). `launcher`: "sequential" (one job after another, in this process) or
    "parallel" (jobs side by side, in their own processes)."""
    from cnnbench.sweep.outcome import with_sweep_dir

    if launcher not in LAUNCHERS:
        raise CnnbenchError(f"launcher={launcher!r} is not a launcher: "
                            f"{' or '.join(map(repr, LAUNCHERS))}.")
    args = ["-m", *as_overrides(overrides, options, sweep=True)]
    if LAUNCHERS[launcher]:
        args.append(LAUNCHERS[launcher])
    with library_errors():
        args, sweep_dir = with_sweep_dir(args)
    assert sweep_dir is not None
    folder = Path(sweep_dir).resolve()
    _train_command(args)
    return compare(folder)
