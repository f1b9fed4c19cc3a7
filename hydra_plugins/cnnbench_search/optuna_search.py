"""`hydra/sweeper=cnnbench_optuna`: a hyperparameter search whose hopeless trials stop early and
whose study several workers share.

Each worker creates or loads the study (hydra.sweeper.study_name in hydra.sweeper.storage: an
SQLite file, `sqlite:///path/optuna.db`, for one machine or a shared disk; any SQLAlchemy URL,
e.g. postgresql://..., for several machines), asks trials while the study has fewer than
n_trials (counted over every worker), turns each into a job's overrides and launches them with
the configured launcher (cnnbench's sequential or parallel one). The job reports its validation
metric to its trial after every epoch and stops when the study's pruner says so (status
`pruned`; cnnbench.run.trial_report). The worker then tells the study how each job ended and, at
the end, prints the study's best trial and its run directory and writes them to
<sweep dir>/optimization_results.yaml.
"""
# no `from __future__ import annotations`: Hydra runs this module before it is in sys.modules,
# where dataclasses cannot resolve string annotations
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class PrunerConf:
    name: str = "median"           # median, hyperband or none
    n_startup_trials: int = 2      # median: trials that run to the end before any is pruned
    n_warmup_steps: int = 0        # median: epochs of every trial that are never pruned
    min_resource: int = 1          # hyperband: the fewest epochs a trial gets
    max_resource: int | None = None  # hyperband: the most; None: trainer.epochs
    reduction_factor: int = 3      # hyperband: 1/reduction_factor of trials go on at each rung


@dataclass
class OptunaSearchConf:
    _target_: str = "hydra_plugins.cnnbench_search.optuna_search.OptunaSearch"
    study_name: str = "cnnbench"
    storage: str | None = None  # None: sqlite:///<sweep dir>/optuna.db
    direction: str | None = None  # None: the direction of optimized_metric
    n_trials: int = 10             # in the whole study, over every worker
    n_jobs: int | None = None   # trials launched at once; None: the launcher's n_jobs or 1
    seed: int = 0                  # TPE's seed (each trial draws with seed + its number)
    n_startup_trials: int = 4      # TPE: random trials before it models the results
    pruner: PrunerConf = field(default_factory=PrunerConf)
    params: dict[str, Any] | None = None  # the search space, as the stock Optuna sweeper's


ConfigStore.instance().store(group="hydra/sweeper", name="cnnbench_optuna",
                             node=OptunaSearchConf, provider="cnnbench")


class OptunaSearch(Sweeper):
    def __init__(self, study_name: str, storage: str | None, direction: str | None,
                 n_trials: int, n_jobs: int | None, seed: int, n_startup_trials: int,
                 pruner: DictConfig, params: DictConfig | None) -> None:
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs, self.seed = n_trials, n_jobs, seed
        self.n_startup_trials = n_startup_trials
        self.pruner = OmegaConf.to_container(pruner, resolve=True) if pruner else {}
        self.params = OmegaConf.to_container(params, resolve=True) if params else {}
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def storage_url(self, sweep_dir: Path) -> str:
        return self.storage or f"sqlite:///{sweep_dir.resolve() / 'optuna.db'}"

    def batch_size(self) -> int:
        if self.n_jobs:
            return max(1, int(self.n_jobs))
        n_jobs = OmegaConf.select(self.config, "hydra.launcher.n_jobs", default=None)
        return max(1, int(n_jobs)) if isinstance(n_jobs, int) else 1

    def pruner_spec(self) -> dict[str, Any]:
        spec = dict(self.pruner)
        if spec.get("name") == "hyperband" and not spec.get("max_resource"):
            spec["max_resource"] = int(self.config.trainer.epochs)
        return spec

    def sweep(self, arguments: list[str]) -> None:
        from cnnbench.run.study_storage import quiet_libraries, shown_url
        from cnnbench.run.trial_report import STORAGE_ENV, STUDY_ENV
        from cnnbench.settings.objective import objective_of

        with quiet_libraries():  # importing Optuna logs the set-up of Alembic's plugins
            from ._results import report_results, save_results, tell_outcomes
            from ._study import ask_trials, open_study, search_space, suggest, trial_overrides

        assert self.config is not None and self.launcher is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = self.storage_url(sweep_dir)
        objective = objective_of(self.config.get("optimized_metric", "val/acc"))
        study = open_study(self.study_name, url, self.direction or objective.direction,
                           self.pruner_spec())
        space, fixed = search_space(self.params, arguments)
        log.info(f"Study {self.study_name} in {shown_url(url)}: {self.n_trials} trials, pruner "
                 f"{study.user_attrs.get('cnnbench.pruner', {}).get('name', 'none')}")
        previous = {k: os.environ.get(k) for k in (STUDY_ENV, STORAGE_ENV)}
        os.environ.update({STUDY_ENV: self.study_name, STORAGE_ENV: url})  # for the jobs
        save_results(study, url, sweep_dir)  # from the start: a search killed leaves it
        try:
            while trials := ask_trials(study, url, self.n_trials, self.batch_size()):
                for trial in trials:
                    suggest(study, trial, space, self.seed, self.n_startup_trials)
                try:
                    returns = self.launcher.launch([trial_overrides(t, fixed) for t in trials],
                                                   initial_job_idx=self.job_idx)
                except BaseException:  # stopped: its trials stay running, to be resumed
                    save_results(study, url, sweep_dir)
                    raise
                self.job_idx += len(returns)
                tell_outcomes(study, trials, returns, objective)
                save_results(study, url, sweep_dir)
        finally:
            for key, value in previous.items():
                os.environ.pop(key) if value is None else os.environ.update({key: value})
        report_results(study, url, sweep_dir)
