"""Sweeps on a Slurm cluster (`hydra/launcher=slurm`), and the same code path on this machine
through submitit's local executor (`hydra/launcher=slurm_local`): Hydra's submitit launchers,
made to survive preemption and time limits, and to keep the sweep's manifest.

Every job is planned as cnnbench's other launchers plan them (`_planning`: the manifest records
every job before any runs; a sweep run again skips its completed jobs and resumes the others)
and submitted with its own composed config. When the scheduler asks a job to make way, the run
saves its last.pt and says `interrupted`, and submitit submits it again; it then resumes in its
own directory (`_requeue`). A requeued job stays one job: one directory, one line of the
manifest, its status the resumed run's.
"""
# no `from __future__ import annotations`: Hydra runs this module before it is in sys.modules,
# where dataclasses cannot resolve string annotations
import logging
from dataclasses import dataclass
from typing import Any, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)

HERE = "hydra_plugins.cnnbench_launcher.submitit_launcher"


@dataclass
class CnnbenchSlurmConf(SlurmQueueConf):
    _target_: str = f"{HERE}.CnnbenchSlurmLauncher"
    # times a job may be requeued after reaching its time limit (preemptions do not count): it
    # resumes from its last.pt each time
    max_num_timeout: int = 3


@dataclass
class CnnbenchLocalConf(LocalQueueConf):
    _target_: str = f"{HERE}.CnnbenchLocalLauncher"
    # minutes; a fraction is allowed (the local executor counts whole seconds)
    timeout_min: float = 60.0
    # seconds before the time limit at which the job is signalled to save and be requeued
    signal_delay_s: int = 30
    max_num_timeout: int = 3


ConfigStore.instance().store(group="hydra/launcher", name="cnnbench_submitit_slurm",
                             node=CnnbenchSlurmConf, provider="cnnbench")
ConfigStore.instance().store(group="hydra/launcher", name="cnnbench_submitit_local",
                             node=CnnbenchLocalConf, provider="cnnbench")


class CnnbenchSubmitit(BaseSubmititLauncher):
    """Hydra's submitit launcher with cnnbench's planning, and jobs that resume when requeued."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.sweep_book: Any = None  # cnnbench.sweep.plan.SweepBook, once jobs are planned

    def __call__(self, config: DictConfig, singleton_state: dict[type, Any],
                 attempt: int = 1) -> JobReturn:
        """The job, in its own process on the cluster (`attempt` counts its requeues)."""
        import submitit

        from cnnbench.endings import Requeued

        from ._requeue import resume_where_it_was, stop_on_requeue_signal

        Singleton.set_state(singleton_state)
        setup_globals()
        with read_write(config.hydra), open_dict(config.hydra.job):
            config.hydra.job.id = submitit.JobEnvironment().job_id
        earlier = resume_where_it_was(config, attempt)
        if earlier is not None:
            return earlier
        with stop_on_requeue_signal() as requeue:
            try:
                return run_job(hydra_context=self.hydra_context,
                               task_function=self.task_function, config=config,
                               job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            except Requeued as err:
                signum = err.signum
        requeue(signum)  # submitit's handler: checkpoint, requeue, exit
        raise AssertionError("unreachable: submitit's handler exits")

    def checkpoint(self, config: DictConfig, singleton_state: dict[type, Any],
                   attempt: int = 1) -> Any:
        """What submitit submits again when the job is requeued: the same job, one attempt on."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, config, singleton_state, attempt + 1)

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """One JobReturn per job, in the order of `job_overrides` (sweepers rely on it)."""
        from ._planning import record_outcomes
        from ._submission import launch

        try:
            return launch(self, job_overrides)
        finally:  # also when the sweep is stopped: the manifest says how each job ended
            record_outcomes(self)


class CnnbenchSlurmLauncher(CnnbenchSubmitit):
    _EXECUTOR = "slurm"


class CnnbenchLocalLauncher(CnnbenchSubmitit):
    _EXECUTOR = "local"
