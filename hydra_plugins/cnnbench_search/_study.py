"""The study a search shares: created or loaded from its storage, its trials counted across every
worker that uses it, new trials asked only while the study has fewer than n_trials, and each new
trial's parameters drawn by a TPE sampler seeded with the trial's number (the same seed gives the
same search, and two workers never draw the same startup trials). A trial whose search process
is gone before it could tell the study how the trial ended (stopped, or killed) is taken over by
the next run of the command on that machine, and its job resumes from its last.pt."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import optuna
from optuna.trial import TrialState

from cnnbench.run.study_storage import open_storage, quiet_libraries, storage_lock
from cnnbench.run.trial_report import PRUNER_ATTR, make_pruner
from cnnbench.rundir.lock import process_gone, this_process
from cnnbench.settings.trial import TRIAL_OVERRIDE  # how a job learns which trial it is

NOT_RUN_ATTR = "cnnbench.not_run"  # a trial that does not count: asked, but never run
WORKER_ATTR = "cnnbench.worker"    # the search process that runs the trial and will tell it


def open_study(name: str, url: str, direction: str, pruner: Mapping[str, Any]) -> Any:
    """The study `name` in the storage at `url`, created when it does not exist yet; the pruner
    settings are stored with it the first time, so every worker and job prunes alike."""
    storage = open_storage(url)
    with quiet_libraries():
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction=direction,
                                        load_if_exists=True)
        except ValueError:  # it exists, made to go the other way, which Optuna will not change
            study = optuna.load_study(study_name=name, storage=storage)
            if study.direction.name.lower() == direction:
                raise
    if study.direction.name.lower() != direction:
        from cnnbench.settings.objective import SweepError

        raise SweepError(f"The study {name!r} in {url} was made to {study.direction.name.lower()}"
                         f", and this search would {direction} its value: give the search "
                         f"another hydra.sweeper.study_name (or the matching optimized_metric).")
    if PRUNER_ATTR not in study.user_attrs:
        study.set_user_attr(PRUNER_ATTR, dict(pruner))
    study.pruner = make_pruner(study.user_attrs[PRUNER_ATTR])
    return study


def counted(study: Any) -> list[Any]:
    """The trials that count towards n_trials: finished, running or stopped (to be resumed),
    except those asked but never run."""
    return [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(NOT_RUN_ATTR)]


def not_run(study: Any, trial: Any, why: str) -> None:
    """Close a trial that will not count (it shows as failed in the study, marked why)."""
    trial.set_user_attr(NOT_RUN_ATTR, why)
    study.tell(trial, state=TrialState.FAIL)


def adopt_orphans(study: Any, most: int) -> list[Any]:
    """Up to `most` running trials whose search process is gone (stopped by Ctrl-C or a signal,
    or killed): this process takes them over and runs their jobs again, which resume from
    their last.pt. Only trials asked on this machine can be known to be orphans."""
    adopted = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if len(adopted) >= most:
            break
        worker = frozen.user_attrs.get(WORKER_ATTR)
        if worker and process_gone(worker):
            trial = optuna.trial.Trial(study, frozen._trial_id)
            trial.set_user_attr(WORKER_ATTR, this_process())
            adopted.append(trial)
    return adopted


def ask_trials(study: Any, url: str, n_trials: int, batch: int) -> list[Any]:
    """Up to `batch` trials to run: first the study's orphans (see `adopt_orphans`), then new
    ones, as long as the study has fewer than n_trials that count."""
    with storage_lock(url):
        orphans = adopt_orphans(study, batch)
        wanted = min(batch - len(orphans), n_trials - len(counted(study)))
        trials = [study.ask() for _ in range(max(wanted, 0))]
        for trial in trials:
            trial.set_user_attr(WORKER_ATTR, this_process())
    kept = []
    for trial in trials:  # another machine may have asked at the same moment
        ahead = [t for t in counted(study) if t.number <= trial.number]
        if len(ahead) > n_trials:
            not_run(study, trial, "surplus: the study had its n_trials already")
        else:
            kept.append(trial)
    return orphans + kept


def suggest(study: Any, trial: Any, space: Mapping[str, Any], seed: int,
            startup: int) -> None:
    """The trial's parameters, drawn by a TPE sampler seeded with seed + its number."""
    study.sampler = optuna.samplers.TPESampler(seed=seed + trial.number,
                                               n_startup_trials=startup)
    for name, distribution in space.items():
        trial._suggest(name, distribution)


def trial_overrides(trial: Any, fixed: Mapping[str, Any]) -> list[str]:
    """The job's overrides: the trial's parameters, the fixed ones, and its number."""
    values = {**trial.params, **fixed}
    return [*(f"{name}={value}" for name, value in values.items()),
            f"{TRIAL_OVERRIDE}={trial.number}"]


def search_space(params: Mapping[str, Any] | None,
                 arguments: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(distributions, fixed values) from hydra.sweeper.params and the command line, in the
    stock Optuna sweeper's syntax: choice(...), interval(a, b), tag(log, interval(a, b)),
    range(...); a plain value is passed to every trial as it is."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    distributions, fixed = create_params_from_overrides(lines)
    return distributions, {k: v for k, v in fixed.items() if k not in distributions}
