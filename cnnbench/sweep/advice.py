"""What `cnnbench train` tells the user to do next when a run or a sweep did not complete: the
exact command, true to what is on disk."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from rich.markup import escape

from cnnbench.settings.overrides import hydra_quote, override_key

# the launchers that run a sweep again in its directory by each job's identity (the default one,
# cnnbench_sequential, hydra/launcher=parallel and the submitit ones, slurm and slurm_local);
# Optuna searches and other launchers do not
RESUMING_LAUNCHERS = ("parallel", "cnnbench_parallel", "cnnbench_sequential", "slurm",
                      "slurm_local", "cnnbench_submitit_slurm", "cnnbench_submitit_local")


def sweep_continues(args: list[str]) -> bool:
    """Whether running this sweep's command again in its directory continues it (cnnbench's own
    launchers with Hydra's basic sweeper) rather than starting its jobs over."""
    for arg in args:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key in ("hparams_search", "hydra/sweeper"):
            return False
        if key == "hydra/launcher" and value not in RESUMING_LAUNCHERS:
            return False
    return True


def search_continues(sweep_dir: Path) -> bool:
    """Whether `sweep_dir` holds a cnnbench_optuna search, whose study running the command again
    continues (the stock Optuna sweeper and Hydra's basic sweeper start a search over)."""
    from cnnbench.sweep.manifest import read_manifest

    manifest = read_manifest(Path(sweep_dir))
    return manifest is not None and manifest.search


def next_run(args: list[str], sweep_dir: Path) -> tuple[str | None, bool]:
    """What running the sweep's command again does, as (that command, whether it continues a
    search): with cnnbench's launchers and Hydra's basic sweeper it skips the completed jobs and
    resumes or runs again the others; a cnnbench_optuna search resumes its stopped trials and
    goes on until its study has n_trials (its failed trials are not run again). (None, False)
    where running it again would start over."""
    if search_continues(sweep_dir):
        return continue_command(args, sweep_dir), True
    return (continue_command(args, sweep_dir) if sweep_continues(args) else None), False


def continue_command(args: list[str], sweep_dir: Path) -> str:
    """The sweep's own command line, run again in `sweep_dir`: completed jobs are skipped,
    interrupted ones resume and failed ones run again."""
    path = str(sweep_dir)
    if re.fullmatch(r"[A-Za-z0-9_./-]+", path):
        value = path
    else:  # quoted for Hydra: "..." reads best inside the shell's '...'
        value = f'"{path}"' if not re.search(r'["\\$]', path) else hydra_quote(path)
    words = [a for a in args if override_key(a) != "hydra.sweep.dir"]
    return " ".join(shlex.quote(w) for w in ["cnnbench", "train", *words,
                                             f"hydra.sweep.dir={value}"])


SEARCH_CONTINUES = ("Continue the search with the command below: its study keeps the trials "
                    "that ended, the stopped ones resume from their last.pt, and it runs new "
                    "trials until the study has its n_trials:")
SWEEP_CONTINUES = ("Continue the sweep with the command below: it skips the jobs that completed, "
                   "resumes the interrupted ones from their last.pt and runs the rest:")


def interrupted_advice(run_dirs: list[Path], sweep_dir: Path | None,
                       sweep_command: str | None = None, search: bool = False,
                       args: list[str] | None = None) -> str:
    """What the user can do next after Ctrl-C: continue the sweep (or the `search`) with
    `sweep_command`, resume each run that has a last.pt on its own, or start a single run that
    has none again (from the arguments it was started with, `args`)."""
    from cnnbench.run.resume import resume_command
    from cnnbench.run.unresumable import nothing_to_resume, start_again_command
    from cnnbench.rundir import PRUNED, last_checkpoint, read_metrics
    from cnnbench.sweep.manifest import job_dirs

    text = "[bold yellow]interrupted:[/] "
    if sweep_dir is not None:  # its jobs may have run in other processes: look on disk
        run_dirs = job_dirs(Path(sweep_dir))
        text += escape(f"the sweep directory {sweep_dir} keeps every job's config, curves and "
                       f"metrics.json. ")
        if sweep_command is not None:
            how = SEARCH_CONTINUES if search else SWEEP_CONTINUES
            return text + f"{how}\n  {escape(sweep_command)}"
    elif run_dirs:
        text += escape(f"the run directory {run_dirs[-1]} keeps its config, curves and "
                       f"metrics.json (status: interrupted). ")
    else:
        return text + "stopped before a run directory was made; nothing was written."
    resumable = [d for d in run_dirs if last_checkpoint(d).is_file()  # a pruned trial is done
                 and read_metrics(d).get("status") != PRUNED]
    if not resumable:
        again = (start_again_command(args, run_dirs[-1])
                 if sweep_dir is None and args is not None else None)
        return text + escape(nothing_to_resume(run_dirs, sweep_dir, again))
    commands = "\n  ".join(escape(resume_command(d)) for d in resumable)
    return text + f"Continue with:\n  {commands}"
