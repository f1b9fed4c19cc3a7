"""The Hydra application behind `cnnbench train`."""
from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from cnnbench.endings import Ending, ending_of
from cnnbench.engine.dist_env import from_environment
from cnnbench.errors import UserError, print_user_error
from cnnbench.faults import fault_of
from cnnbench.run.config_checks import check_config
from cnnbench.run.jobclock import JobClock
from cnnbench.rundir import PRUNED, RunLock, discard_unstarted, job_starts, record_outcome
from cnnbench.rundir.naming import job_dirname, new_run_id
from cnnbench.settings.config_files import hydra_config_path
from cnnbench.settings.identity import config_hash
from cnnbench.settings.objective import objective_of
from cnnbench.terminal import RunConsole

log = logging.getLogger(__name__)


def config_root() -> str:
    return hydra_config_path()


def default_parallel_jobs() -> int:
    """Jobs the parallel launcher runs at once by default: up to 4, never more than CPU cores."""
    return max(1, min(4, os.cpu_count() or 1))


if not OmegaConf.has_resolver("cnnbench.job_dirname"):
    OmegaConf.register_new_resolver("cnnbench.job_dirname", job_dirname)
if not OmegaConf.has_resolver("cnnbench.run_id"):
    OmegaConf.register_new_resolver("cnnbench.run_id", new_run_id, use_cache=True)
if not OmegaConf.has_resolver("cnnbench.parallel_jobs"):
    OmegaConf.register_new_resolver("cnnbench.parallel_jobs", default_parallel_jobs)


def share_cpu_threads(launcher: DictConfig) -> None:
    """Jobs running side by side (the parallel launcher) split the CPU cores instead of fighting over
    them: oversubscribed PyTorch threads slow everything down many times over."""
    n_jobs = launcher.get("n_jobs") if launcher is not None else None
    if isinstance(n_jobs, int) and n_jobs > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_jobs))


@dataclass(frozen=True)
class Outcome:
    """How one job ended, and where its files are."""

    run_dir: Path
    ending: Ending
    error: BaseException | None = None  # a single run's crash, raised again once Hydra is done


def config_error(err: Exception) -> UserError:
    """An error of the composed config (a key deleted with ~, an interpolation that does not
    resolve, a value of the wrong type) as one paragraph."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    key = getattr(err, "full_key", None)
    if "not in struct" in text and key:
        return UserError(f"{key} is missing from the composed config (an override such as "
                         f"~{key} removed it), and a run needs it. Drop that override, or set "
                         f"another value with {key}=<value>.")
    return UserError(f"The composed config is not valid{f' at {key}' if key else ''}: {text}. "
                     f"Check the overrides on the command line (`cnnbench train --cfg job` prints "
                     f"the composed config; `cnnbench train --help` lists every option).")


def start_run(cfg: DictConfig, run_dir: Path, choices: dict, console: Console,
              brief: bool = False, started: float | None = None):
    """The run of this job, its config checked; mistakes in the config are UserErrors. A
    `brief` run (a sweep's job) ends with one line instead of its tables."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        check_config(cfg)  # before torch is imported
        from cnnbench.run.lifecycle import TrainingRun

        return TrainingRun(cfg, run_dir, choices, console, brief=brief, started=started)
    except OmegaConfBaseException as err:
        raise config_error(err) from None


def show_failed_job(console: Console, err: BaseException, run_dir: Path, debug: bool) -> None:
    """How a sweep's job that failed is shown, as a single run's ending is: a mistake, or a
    fault of the machine (a full disk, memory that ran out), as its paragraph; anything else (a
    bug) with its traceback, which --debug shows for every one."""
    fault = fault_of(err)
    shown = str(err) if isinstance(err, UserError) else (fault.text if fault else None)
    if debug or shown is None:
        log.error("job failed:\n%s", traceback.format_exc())
    print_user_error(console, shown if shown is not None else
                     f"this job failed with {type(err).__name__}: {err} (the full traceback is "
                     f"in {run_dir / 'train.log'}).")


def make_train_app(outcomes: list[Outcome], debug: bool = False) -> Callable[[], None]:
    """The `@hydra.main` task; each job appends how it ended to `outcomes`.

    A job that fails records why in its own metrics.json; in a sweep the other jobs go on.
    """

    clock = JobClock()

    @hydra.main(version_base="1.3", config_path=config_root(), config_name="train")
    def train(cfg: DictConfig) -> float | None:
        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        sweeping = hc.mode == RunMode.MULTIRUN
        if sweeping:
            share_cpu_threads(hc.launcher)
        console = RunConsole(label=f"job {hc.job.num}" if sweeping else None, logged=True)
        main = from_environment().is_main
        lock = RunLock(run_dir)  # held already where `cnnbench train` knew the directory
        try:
            if main:  # the job's owner, then its identity, before anything can fail
                lock.acquire()
                job_starts(run_dir, config_hash(cfg))
            objective = objective_of(cfg.get("optimized_metric", "val/acc"))
            metrics = start_run(cfg, run_dir, dict(hc.runtime.choices), console,
                                brief=sweeping, started=clock.job_started()).execute()
        except BaseException as err:
            ending = ending_of(err)
            crashed = not (ending.interrupted or sweeping or isinstance(err, UserError))
            outcomes.append(Outcome(run_dir, ending, err if crashed else None))
            if main and lock.mine():  # a run that failed before it began says so too
                record_outcome(run_dir, ending.status, ending.reason or "",
                               {"exit_code": ending.exit_code})
                if isinstance(err, UserError) and not sweeping:
                    discard_unstarted(run_dir)  # a mistyped command leaves no run behind
            if ending.status == PRUNED:  # a search stopped a hopeless trial: not a failure
                console.print(f"pruned: {ending.reason}", markup=False, highlight=False)
                return None
            if ending.interrupted:
                raise  # Ctrl-C stops a sweep too
            if crashed:  # the CLI raises it again after Hydra (whose own line would come first)
                return None
            show_failed_job(console, err, run_dir, debug)
            return None
        finally:
            lock.release()
        outcomes.append(Outcome(run_dir, ending_of(None)))
        return objective.value(metrics)

    return train
