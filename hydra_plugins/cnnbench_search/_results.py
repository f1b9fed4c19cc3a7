"""What a search does with each finished job: the study is told how it ended, read from the
metrics.json of the job's run directory (whichever process or machine ran it); and, at the end,
the best trial of the whole study, with its run directory, printed and written next to the
sweep as optimization_results.yaml."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from omegaconf import OmegaConf
from optuna.trial import TrialState

from cnnbench import rundir
from cnnbench.run.study_storage import shown_url
from cnnbench.run.trial_report import RUN_DIR_ATTR
from cnnbench.settings.objective import Objective

from ._study import counted

RESULTS_FILE = "optimization_results.yaml"


def run_dir_of(frozen: Any, ret: Any) -> Path | None:
    """The job's run directory: as the job recorded it in its trial, else as Hydra gave it."""
    recorded = frozen.user_attrs.get(RUN_DIR_ATTR)
    if recorded:
        return Path(recorded)
    try:
        found = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir")
    except Exception:  # noqa: BLE001 (a job that never started has no config to read)
        found = None
    return Path(str(found)) if found else None


def tell_outcomes(study: Any, trials: Sequence[Any], returns: Sequence[Any],
                  objective: Objective) -> None:
    """Tell the study how each trial's job ended: completed with its value, pruned or failed.
    A job that was stopped (or never started) leaves its trial running: the next run of the
    search takes it over and resumes it."""
    for trial, ret in zip(trials, returns):
        frozen = study._storage.get_trial(trial._trial_id)
        if frozen.state.is_finished():
            continue
        directory = run_dir_of(frozen, ret)
        metrics, status, _ = rundir.load_metrics(directory) if directory else ({}, None, None)
        if directory is not None and not frozen.user_attrs.get(RUN_DIR_ATTR):
            trial.set_user_attr(RUN_DIR_ATTR, str(directory.resolve()))
        value = objective.value(metrics)
        if status == rundir.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        elif status == rundir.COMPLETED and value is not None and math.isfinite(value):
            study.tell(trial, value)
        elif status in (rundir.INTERRUPTED, rundir.NOT_STARTED):
            continue
        else:
            study.tell(trial, state=TrialState.FAIL)


def results(study: Any, storage: str) -> dict[str, Any]:
    """The study's outcome over every worker: trials by state, the best one and its run."""
    trials = counted(study)
    states = Counter(t.state.name.lower() for t in trials)
    out: dict[str, Any] = {"name": "cnnbench_optuna", "study_name": study.study_name,
                           "storage": shown_url(storage), "direction": study.direction.name.lower(),
                           "n_trials": len(trials), "completed": states.get("complete", 0),
                           "pruned": states.get("pruned", 0), "failed": states.get("fail", 0),
                           "unfinished": states.get("running", 0)}
    if any(t.state == TrialState.COMPLETE for t in trials):
        best = study.best_trial
        out.update(best_value=best.value, best_params=dict(best.params), best_trial=best.number,
                   best_run_dir=best.user_attrs.get(RUN_DIR_ATTR))
    return out


def save_results(study: Any, storage: str, sweep_dir: Path) -> dict[str, Any]:
    """Write the study so far to <sweep dir>/optimization_results.yaml (at the start, after each
    batch and at the end: a search stopped or killed leaves what it had)."""
    found = results(study, storage)
    OmegaConf.save(OmegaConf.create(found), Path(sweep_dir) / RESULTS_FILE)
    return found


def report_results(study: Any, storage: str, sweep_dir: Path) -> dict[str, Any]:
    """Print the study's best trial and write it to <sweep dir>/optimization_results.yaml."""
    found = save_results(study, storage, sweep_dir)
    unfinished = (f", {found['unfinished']} unfinished (running elsewhere, or stopped: the "
                  f"next run of the command resumes them)" if found["unfinished"] else "")
    lines = [f"search: study {found['study_name']} has {found['n_trials']} trials: "
             f"{found['completed']} completed, {found['pruned']} pruned, "
             f"{found['failed']} failed{unfinished}"]
    if "best_value" in found:
        lines += [f"best value: {found['best_value']:.6g} (trial {found['best_trial']})",
                  f"best params: {found['best_params']}",
                  f"best run: {found['best_run_dir']}"]
    else:
        lines.append("no trial completed yet: no best value")
    lines.append(f"written to {Path(sweep_dir) / RESULTS_FILE}")
    print("\n".join(lines), flush=True)
    return found
