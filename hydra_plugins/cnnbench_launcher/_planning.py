"""Which jobs of a sweep run, and in which directory (for both of cnnbench's launchers).

Each job's config is composed, its identity (cnnbench.settings.identity) looked up among the jobs
of the sweep's manifest (cnnbench.sweep.manifest), and the job pointed at its directory: its
earlier attempt's own (resumed from its last.pt, or run again from the start) or, for a new job,
one numbered after the jobs already there. Completed jobs are not run: the sweeper gets the value
of their optimized_metric that they stored. The manifest records every job of the batch before
any runs, and each one's outcome when the batch ends. In a new sweep directory every job is new
and numbered as Hydra numbers them.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from cnnbench import rundir
from cnnbench.settings.config_files import hydra_config_of
from cnnbench.settings.identity import config_hash
from cnnbench.settings.objective import recorded_value
from cnnbench.settings.overrides import omegaconf_literal
from cnnbench.sweep.plan import (
    BUSY,
    NEW,
    RESTART,
    RESUME,
    SKIP,
    Decision,
    SweepBook,
    absolute,
    check_job_dir,
    job_number,
)

log = logging.getLogger(__name__)

NOTES = {SKIP: "completed earlier: skipped", BUSY: "left alone: another process is writing it",
         RESUME: "resumed from its last.pt ({earlier})",
         RESTART: "run again from the start ({earlier})", NEW: ""}


@dataclass
class PlannedJob:
    idx: int                # its number (its directory's)
    overrides: list[str]
    config: DictConfig      # composed, pointed at its directory (and checkpoint)
    dir: Path
    digest: str             # its identity (cnnbench.settings.identity)
    action: str

    @property
    def runs(self) -> bool:
        return self.action not in (SKIP, BUSY)


def task_config(config: DictConfig) -> DictConfig:
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def job_dir(config: DictConfig) -> Path:
    with hydra_config_of(config):
        return absolute(os.path.join(str(OmegaConf.select(config, "hydra.sweep.dir")),
                                     str(OmegaConf.select(config, "hydra.sweep.subdir"))))


def sweep_book(launcher) -> SweepBook:
    """The launcher's book of this sweep (one per sweep directory, kept across batches)."""
    sweep_dir = absolute(str(launcher.config.hydra.sweep.dir))
    if launcher.sweep_book is None or launcher.sweep_book.sweep_dir != sweep_dir:
        from hydra_plugins.cnnbench_search.optuna_search import OptunaSearchConf

        # cnnbench's search: its trials, from every run of its command, are the sweep's jobs
        sweeper = OmegaConf.select(launcher.config, "hydra.sweeper._target_", default=None)
        launcher.sweep_book = SweepBook(sweep_dir, search=sweeper == OptunaSearchConf._target_)
    return launcher.sweep_book


def plan_jobs(launcher, job_overrides: Sequence[Sequence[str]]) -> list[PlannedJob]:
    """Every job of the batch, in order, with what to do about it and where; the sweep's
    manifest records them before any job runs."""
    book = sweep_book(launcher)
    loader = launcher.hydra_context.config_loader
    configs = [loader.load_sweep_config(launcher.config, list(o)) for o in job_overrides]
    digests = []
    for config in configs:
        with hydra_config_of(config):
            digests.append(config_hash(task_config(config)))
    repeated = repeated_jobs(job_overrides, digests)
    if repeated and not book.search:  # a search may propose one point twice: its sampler's call
        log.warning(repeated)
    decisions = book.place(digests)
    planned = [place(book, list(o), c, h, d)
               for o, c, h, d in zip(job_overrides, configs, digests, decisions)]
    book.save()
    return planned


def repeated_jobs(job_overrides: Sequence[Sequence[str]], digests: Sequence[str]) -> str | None:
    """A warning when jobs of the batch are one run (the same config and seed, as a list that
    repeats a value gives): each still runs, but it is not another sample."""
    first: dict[str, int] = {}
    repeats = []
    for i, digest in enumerate(digests):
        if digest in first:
            repeats.append(" ".join(job_overrides[i]) or "(no overrides)")
        first.setdefault(digest, i)
    if not repeats:
        return None
    return (f"{len(repeats)} job{'s' if len(repeats) > 1 else ''} of this sweep repeat"
            f"{'' if len(repeats) > 1 else 's'} another job with the same config and seed ("
            f"{'; '.join(repeats)}): each runs, and `cnnbench compare` counts such runs once, "
            f"as one sample. To sample seeds, sweep trainer.seed, e.g. trainer.seed=0,1,2.")


def record_outcomes(launcher) -> None:
    """When a batch ends (or is stopped): each job's latest outcome into the sweep's manifest.
    Only a record: the jobs' own metrics.json say the same, so a manifest that cannot be
    written costs a warning."""
    if launcher.sweep_book is None or launcher.sweep_book.manifest is None:
        return
    try:
        launcher.sweep_book.save(refresh=True)
    except OSError as err:
        log.warning(f"the sweep's manifest could not be updated ({err}); each job's "
                    f"{rundir.METRICS_FILE} says how it ended")


def place(book: SweepBook, overrides: list[str], config: DictConfig, digest: str,
          decision: Decision) -> PlannedJob:
    old = decision.run_dir
    idx = job_number(old.name) if old is not None else None
    idx = book.take_number() if idx is None else idx
    with read_write(config.hydra), open_dict(config):
        config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
        config.hydra.job.num = idx
        if old is not None:
            config.hydra.sweep.subdir = omegaconf_literal(os.path.relpath(old, book.sweep_dir))
    directory = job_dir(config)
    while old is None and (directory in book.claimed or rundir.is_run_dir(directory)):
        directory = directory.with_name(directory.name + "~")  # a subdir pattern without num
        with read_write(config.hydra), open_dict(config):
            config.hydra.sweep.subdir = omegaconf_literal(os.path.relpath(directory,
                                                                          book.sweep_dir))
    check_job_dir(book.sweep_dir, directory, book.claimed)
    rundir.refuse_planted_links(directory, "train")  # Hydra writes .hydra/ before the job's lock
    prepare(config, directory, decision)
    book.note(decision, directory, digest, overrides)
    note = ("had not started" if decision.earlier == rundir.NOT_STARTED else
            NOTES[decision.action].format(earlier=decision.earlier))
    log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}" + (f"  [{note}]" if note else ""))
    return PlannedJob(idx, overrides, config, directory, digest, decision.action)


def prepare(config: DictConfig, directory: Path, decision: Decision) -> None:
    """Ready the job's directory for what `decision` does with it: a job resumed is pointed at
    its last.pt; one run again from the start has its earlier attempt's files set aside."""
    if decision.action == RESUME:
        with read_write(config), open_dict(config):
            config.trainer.resume = omegaconf_literal(str(rundir.last_checkpoint(directory)))
    if decision.action == RESTART and decision.earlier != rundir.NOT_STARTED:
        moved = rundir.set_aside(directory)
        rundir.record_outcome(directory, rundir.NOT_STARTED, f"to be run again from the start; "
                              f"its earlier attempt ({decision.earlier}) is in {moved}")


def job_return(job: Any, value: Any) -> JobReturn:
    """A JobReturn for a job that the launcher did not run to its end (or at all). Like the task
    function does for a job that failed, it holds a value rather than a raised error: Hydra's
    basic sweeper would otherwise abort the sweep at the first failure. Its
    hydra.runtime.output_dir names the job's directory, as a job Hydra ran says it (a search
    reads how the job ended from there)."""
    hydra_cfg = OmegaConf.masked_copy(job.config, "hydra")
    with read_write(hydra_cfg.hydra.runtime), open_dict(hydra_cfg.hydra.runtime):
        hydra_cfg.hydra.runtime.output_dir = str(job.dir)
    return JobReturn(overrides=list(job.overrides), cfg=task_config(job.config),
                     hydra_cfg=hydra_cfg, working_dir=os.getcwd(),
                     task_name=str(job.config.hydra.job.name), status=JobStatus.COMPLETED,
                     _return_value=value)


def earlier_return(job: PlannedJob) -> JobReturn:
    """What a job that is not run returns: a completed one, the value of its optimized_metric
    that its metrics.json holds (what it returned when it ran)."""
    if job.action != SKIP:
        return job_return(job, None)
    metric = OmegaConf.select(job.config, "optimized_metric", default="val/acc")
    return job_return(job, recorded_value(metric, rundir.read_metrics(job.dir)))
