"""The submitit launchers' side in the sweep's own process: plan the jobs, submit those that
run (each with its own composed config), wait for their results.

A job whose result cannot be had (it failed for good in submitit's hands, timed out more often
than it may be requeued, or was cancelled) is recorded in its metrics.json, unless that already
says how it ended, and the sweep goes on. Ctrl-C or SIGTERM to the sweep cancels the jobs it
submitted (Slurm's scancel; the local executor sends them SIGINT, and they save and stop).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, setup_globals
from omegaconf import OmegaConf

from cnnbench.errors import UserError

from ._planning import PlannedJob, earlier_return, job_return, plan_jobs

log = logging.getLogger(__name__)

INIT_KEYS = {"max_num_timeout"}  # given to the executor when it is made, not as a parameter


def executor_of(launcher) -> Any:
    """submitit's executor for the launcher's cluster, with the launcher's parameters: Slurm's
    as Hydra's submitit launcher makes it; the local one given its own parameters as they are
    (submitit's AutoExecutor refuses its signal_delay_s, and a fraction of a minute)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = {k: v for k, v in launcher.params.items() if v is not None}
    cluster, folder = launcher._EXECUTOR, params.pop("submitit_folder")
    init = {k: params.pop(k) for k in INIT_KEYS if k in params}
    if cluster == "local":
        executor = submitit.LocalExecutor(folder=folder, **init)
        executor.parameters.update(params)
        return executor
    try:
        executor = submitit.AutoExecutor(cluster=cluster, folder=folder,
                                         **{f"{cluster}_{k}": v for k, v in init.items()})
    except RuntimeError as err:  # no srun here
        raise UserError(f"hydra/launcher={cluster} submits the sweep's jobs to a Slurm cluster, "
                        f"and this machine is not part of one ({err}). Run the command on a "
                        f"login node of the cluster, or use hydra/launcher=slurm_local to run "
                        f"the same jobs on this machine.") from None
    common = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in common else f"{cluster}_{k}": v
                                  for k, v in params.items()})
    return executor


def launch(launcher, job_overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    """One JobReturn per job, in order: the jobs submitted, and those the plan does not run."""
    from cnnbench.rundir import write_config_hash

    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info(f"Submitit '{launcher._EXECUTOR}' sweep output dir: {sweep_dir}")
    executor = executor_of(launcher)  # before anything is written: is there a cluster?
    planned = plan_jobs(launcher, job_overrides)
    runs = [p for p in planned if p.runs]
    for job in runs:
        write_config_hash(job.dir, job.digest)  # its identity, before anything can go wrong
    submitted = []
    if runs:
        state = Singleton.get_state()
        submitted = executor.map_array(launcher, [p.config for p in runs], [state] * len(runs))
    try:
        results = {id(p): result_of(p, job) for p, job in zip(runs, submitted)}
    except KeyboardInterrupt:
        for job in submitted:
            job.cancel(check=False)
        raise
    return [results[id(p)] if id(p) in results else earlier_return(p) for p in planned]


def result_of(planned: PlannedJob, job: Any) -> JobReturn:
    """The job's JobReturn, once it has ended; for a job that ended without one, what its
    metrics.json (or else submitit) says."""
    from cnnbench.rundir import FAILED, record_outcome

    try:
        return job.results()[0]
    except Exception as err:  # noqa: BLE001 (submitit's errors for a job that has no result)
        reason = submitit_reason(err)
        record_outcome(planned.dir, FAILED, reason)  # unless it says how it ended
        log.error(f"job #{planned.idx} has no result ({reason}); see its metrics.json")
        return job_return(planned, None)


def submitit_reason(err: Exception) -> str:
    """submitit's error for a job, in a line: the error the job's process ended with, and
    where its log is."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    logs = [line[2:] for line in lines if line.startswith("- ")]
    said = [line for line in lines if not line.startswith("- ")
            and not line.startswith("You can check full logs")]
    return (f"{type(err).__name__}: {said[-1] if said else err}"
            + (f" (its log: {logs[-1]})" if logs else ""))
