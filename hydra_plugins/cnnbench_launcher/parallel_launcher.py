"""Run the jobs of a sweep side by side, each in its own child process, `n_jobs` at a time.

Unlike a worker pool, one job's process dying (the out-of-memory killer's SIGKILL, a crash in
native code) costs only that job: it is recorded as failed in its metrics.json and the sweep
goes on. SIGTERM or Ctrl-C to the sweep stops the running jobs cleanly (each saves its last
checkpoint and says `interrupted`) and marks the jobs that never started as `not started`; so
does a failed job with hydra.launcher.fail_fast=true (`_stopping`).
On a machine with GPUs each job sees one of them, the jobs spread over all (`_gpus`); a sweep run
again in its directory runs only the jobs that did not complete (`_planning`).
"""
# no `from __future__ import annotations`: Hydra runs this module before it is in sys.modules,
# where dataclasses cannot resolve string annotations
import logging
from dataclasses import dataclass
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher

from ._state import LauncherState

log = logging.getLogger(__name__)


@dataclass
class ParallelLauncherConf:
    _target_: str = "hydra_plugins.cnnbench_launcher.parallel_launcher.ParallelLauncher"
    # jobs running at once; 0 or less: one per CPU core
    n_jobs: int = -1
    # seconds the running jobs get to save and stop after SIGTERM / Ctrl-C before SIGKILL
    stop_timeout_s: float = 300.0
    # stop the sweep at its first failed job (the running ones are stopped, the rest not started)
    fail_fast: bool = False


ConfigStore.instance().store(group="hydra/launcher", name="cnnbench_parallel",
                             node=ParallelLauncherConf, provider="cnnbench")


class ParallelLauncher(LauncherState, Launcher):
    def __init__(self, n_jobs: int = -1, stop_timeout_s: float = 300.0,
                 fail_fast: bool = False) -> None:
        super().__init__()
        self.n_jobs = n_jobs
        self.stop_timeout_s = stop_timeout_s
        self.fail_fast = fail_fast

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        """One JobReturn per job, in the order of `job_overrides` (sweepers rely on it)."""
        from ._planning import record_outcomes
        from ._processes import launch

        try:
            return launch(self, job_overrides, initial_job_idx)
        finally:  # also when the sweep is stopped: the manifest says how each job ended
            record_outcomes(self)

    def __repr__(self) -> str:
        return f"ParallelLauncher(n_jobs={self.n_jobs})"
