"""The launcher `cnnbench train -m` uses by default: the jobs one after another in the command's
own process, as Hydra's basic launcher runs them, except that a sweep run again in its directory
skips the jobs that completed and resumes or re-runs the others in their own directories
(`_planning`). Ctrl-C stops the job that is running (it saves and says `interrupted`) and the sweep;
with hydra.launcher.fail_fast=true, so does a failed job (`_stopping`).
"""
# no `from __future__ import annotations`: Hydra runs this module before it is in sys.modules,
# where dataclasses cannot resolve string annotations
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher

from ._state import LauncherState

log = logging.getLogger(__name__)


@dataclass
class SequentialLauncherConf:
    _target_: str = "hydra_plugins.cnnbench_launcher.sequential_launcher.SequentialLauncher"
    # stop the sweep at its first failed job (the jobs after it are marked `not started`)
    fail_fast: bool = False


ConfigStore.instance().store(group="hydra/launcher", name="cnnbench_sequential",
                             node=SequentialLauncherConf, provider="cnnbench")


class SequentialLauncher(LauncherState, Launcher):
    def __init__(self, fail_fast: bool = False) -> None:
        super().__init__()
        self.fail_fast = fail_fast

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """One JobReturn per job, in the order of `job_overrides` (sweepers rely on it)."""
        from cnnbench.rundir import write_config_hash

        from ._planning import earlier_return, job_return, plan_jobs, record_outcomes
        from ._stopping import failure_stops, mark_not_started

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        results: list[JobReturn] = []
        try:
            for job in plan_jobs(self, job_overrides):
                if not job.runs:
                    results.append(earlier_return(job))
                    continue
                if self.stopped_by is not None:  # fail_fast, after a failed job
                    mark_not_started(job, self.stopped_by)
                    results.append(job_return(job, None))
                    continue
                write_config_hash(job.dir, job.digest)  # its identity, before anything can fail
                results.append(run_job(hydra_context=self.hydra_context,
                                       task_function=self.task_function, config=job.config,
                                       job_dir_key="hydra.sweep.dir",
                                       job_subdir_key="hydra.sweep.subdir"))
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
                failure_stops(self, job)
        finally:  # also when Ctrl-C stops the sweep: the manifest says how each job ended
            record_outcomes(self)
        return results

    def __repr__(self) -> str:
        return "SequentialLauncher()"
