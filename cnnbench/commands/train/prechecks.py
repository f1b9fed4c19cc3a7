"""The checks `cnnbench train` makes before Hydra starts, so that a mistake is one paragraph
and nothing is written: known groups, options and keys (`settings.names`), override syntax, an
output folder that can be written, a run directory not in use; the run directory of a torchrun
process; and the directories the command must own (their locks) before Hydra writes into them."""
from __future__ import annotations

import os
from pathlib import Path

from cnnbench.commands.train.placement import check_run_placement, check_sweep_placement
from cnnbench.settings.names import check_override_names, plain_group_choices
from cnnbench.settings.output_dirs import (
    RUN_DIR,
    SWEEP_DIR,
    check_output_keys,
    default_root,
    given_dir,
    given_value,
    with_resolved_dir,
)
from cnnbench.settings.overrides import hydra_value
from cnnbench.sweep.outcome import is_sweep, with_sweep_dir

INFO_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c")  # print, write nothing


def check_single_config(args: list[str]) -> None:
    """`--cfg` prints one composed config, which a sweep (-m) does not have: one paragraph
    instead of Hydra's traceback."""
    from cnnbench.errors import UserError

    shows = [a.partition("=")[0] for a in args
             if a.partition("=")[0] in ("--cfg", "-c", "--info", "-i")]  # --cfg=job too
    if shows and any(a in ("-m", "--multirun") for a in args):
        raise UserError(f"{shows[0]} prints the config of one run, and -m makes a sweep of "
                        f"several: drop -m and give one value per option to see a job's config "
                        f"(e.g. cnnbench train model=mlp {shows[0]} "
                        f"{'job' if shows[0] in ('--cfg', '-c') else 'config'}).")


def check_override_syntax(args: list[str]) -> None:
    """Every key=value parses as Hydra's override grammar; a mistake is one paragraph."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from cnnbench.errors import UserError

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
                                f"write a list as 'key=[a,b]' or a string as 'key=\"a,b\"'.")
        except HydraException as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"'{arg}' is not a valid override ({reason}). Write key=value; "
                            f"quote a value that holds spaces, commas or brackets, e.g. "
                            f"'key=\"a,b\"' (https://hydra.cc/docs/advanced/override_grammar/basic/)."
                            ) from None


def check_output_dir(args: list[str]) -> None:
    """The folder runs are written to must be writable before any training starts."""
    from cnnbench.errors import UserError

    key = SWEEP_DIR if is_sweep(args) else RUN_DIR
    target = given_dir(args, key) or default_root(key)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing} is a file, not a folder, so no run can be written into "
                        f"{target}. Give {key}= a folder's path (a missing folder is made), or "
                        f"leave it off for a new one under outputs/.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"Cannot write run outputs to {target.resolve()}: {existing.resolve()} "
                        f"is not writable. Run from a folder you can write to, or choose another "
                        f"place with hydra.run.dir=... (single runs) / hydra.sweep.dir=... (sweeps).")


def with_resolved_output_dir(args: list[str]) -> list[str]:
    """The run's (or the sweep's) directory, where the command line gives it with
    interpolations, as the path they resolve to (`settings.output_dirs`)."""
    return with_resolved_dir(args, SWEEP_DIR if is_sweep(args) else RUN_DIR)


def check_run_dir_free(args: list[str], resuming: bool) -> None:
    """A run directory given on the command line must not hold another run (histories would
    interleave) nor be in use by a live process; a resume may reuse its own directory (its lock
    was checked before the command line was rewritten)."""
    from cnnbench.errors import UserError
    from cnnbench.run.resume import continue_advice
    from cnnbench.rundir import RunLock, holds_run, last_checkpoint
    from cnnbench.rundir.naming import free_sibling

    run_dir = given_dir(args, RUN_DIR)
    if run_dir is None or resuming or is_sweep(args):
        return
    RunLock(run_dir).refuse_if_held()
    if not holds_run(run_dir):
        return
    if last_checkpoint(run_dir).is_file():
        raise UserError(f"{run_dir} already holds a run, and a new run would mix its history "
                        f"and checkpoints with that one's. {continue_advice(run_dir)} ; or "
                        f"give a new run its own folder "
                        f"(leave hydra.run.dir out, or choose another one).")
    raise UserError(f"{run_dir} already holds a run that cannot be resumed (it has no "
                    f"checkpoints/last.pt), and a new run there would mix its history with "
                    f"that one's. Start the new run in a folder of its own, e.g. "
                    f"hydra.run.dir={hydra_value(str(free_sibling(run_dir)))}, or leave "
                    f"hydra.run.dir out.")


def with_distributed_run_dir(args: list[str]) -> list[str]:
    """Under torchrun, rank 0's command line names the run directory every process of the job
    uses (one it picks, unless hydra.run.dir gives it)."""
    from cnnbench.engine.dist_env import from_environment
    from cnnbench.errors import UserError

    info = from_environment()
    if not info.enabled:
        return args
    if is_sweep(args):
        raise UserError("A sweep (-m) cannot run under torchrun: start one torchrun per run, or "
                        "run the sweep without torchrun (hydra/launcher=parallel runs jobs side "
                        "by side).")
    if given_value(args, RUN_DIR) is not None:
        return args
    from cnnbench.rundir.naming import stamped

    return [*args, f"{RUN_DIR}={default_root(RUN_DIR) / stamped(f'ddp{info.world_size}')}"]


def hydra_mistake(err: BaseException) -> str | None:
    """A mistake Hydra or OmegaConf found in the command line (an unknown hydra/* option, a
    config that does not compose), as one paragraph; None for anything else."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(err, (HydraException, OmegaConfBaseException)):
        return None
    text = str(err).split("\nConfig search path")[0]
    text = " ".join(text.split()) or type(err).__name__
    return (f"{text.rstrip('.')}. Check the command line: `cnnbench train --help` lists the "
            f"options (--debug shows the traceback).")


def checked_train_args(args: list[str]) -> tuple[list[str], Path | None]:
    """`cnnbench train`'s arguments once every check before Hydra has passed, with a resume's
    stored overrides, a sweep's directory and a torchrun process's run directory added; and the
    sweep directory (None for a single run, or one that Hydra will choose). Under torchrun,
    rank 0 checks and every process takes its verdict (`torchrun_args.decided_by_rank0`)."""
    from cnnbench.commands.train.torchrun_args import decided_by_rank0

    return decided_by_rank0(args, checked_on_one_process)


def checked_on_one_process(args: list[str]) -> tuple[list[str], Path | None]:
    """`checked_train_args` for a single process (or torchrun's rank 0)."""
    from cnnbench.run.resume import resume_arguments, resume_value, run_dir_of
    from cnnbench.rundir import RunLock
    from cnnbench.settings.objective import check_sweep_objective

    check_single_config(args)
    args = plain_group_choices(args)
    check_override_names(args)
    check_output_keys(args)
    if any(a in INFO_FLAGS for a in args):
        return args, None
    resume = resume_value(args)
    if resume is not None:
        RunLock(run_dir_of(resume)).refuse_if_held()
    args = resume_arguments(args)
    check_override_syntax(args)
    check_sweep_objective(args)
    args = with_resolved_output_dir(args)
    check_output_dir(args)
    check_run_dir_free(args, resume is not None)
    check_run_placement(args, resume is not None)
    sweep_dir = None
    if resume is None:  # a resumed sweep job runs alone, in its own directory
        args, sweep_dir = with_sweep_dir(args)
        check_sweep_placement(sweep_dir)
    return with_distributed_run_dir(args), sweep_dir


def run_dir_to_own(args: list[str]) -> Path | None:
    """The run directory of a single run whose command line names it (hydra.run.dir=, which a
    resume sets), for its lock to be taken before Hydra writes its config and log there; None
    for a sweep, a command that only prints, a torchrun process other than the first, or a
    directory that Hydra chooses, whose lock the run takes itself."""
    from cnnbench.engine.dist_env import from_environment

    if is_sweep(args) or any(a in INFO_FLAGS for a in args):
        return None
    if not from_environment().is_main:
        return None
    return given_dir(args, RUN_DIR)


def runs_root_to_tidy(args: list[str]) -> Path | None:
    """The folder Hydra makes a single run's folder in when the command line names none
    (outputs/runs): made by this command and left empty (a refused run's folder is removed),
    it is removed again when the command ends. None where the run's folder is named (its lock
    tidies up after it) or for a sweep (its folder is known before Hydra, and locked)."""
    if given_value(args, RUN_DIR) is not None or is_sweep(args) \
            or any(a in INFO_FLAGS for a in args):
        return None
    return default_root(RUN_DIR)
