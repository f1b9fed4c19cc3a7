"""How a sweep stops before all its jobs ran, for both of cnnbench's own launchers: the jobs it
never started are marked `not started` (to be run when the sweep is run again), and, with
`hydra.launcher.fail_fast=true`, the sweep stops at its first failed job.

Fail fast stops at a job that `failed` (an error, a fault, a process that died): not at one that
`diverged` (a result: its settings make training blow up, and the other jobs' say something of
their own), nor at one interrupted on its own. The jobs still running are stopped as Ctrl-C
stops them (they save and say `interrupted`), those not started yet are marked `not started`,
and the sweep ends as that job ended: with its exit code (`endings.sweep_exit_code`: 2 for a
mistake, 1 for a crash, ...), and the command that runs it again for the jobs that did not
complete.
"""
from __future__ import annotations

import logging
from typing import Any

from hydra.core.utils import filter_overrides
from omegaconf import OmegaConf, open_dict, read_write

from cnnbench.rundir import write_config_hash

from ._planning import task_config

log = logging.getLogger(__name__)


def failure_stops(launcher, job: Any) -> str | None:
    """With fail_fast on, when `job` failed: why the sweep stops (and the launcher remembers
    it, so that later batches of the sweep do not start either); else None."""
    from cnnbench.rundir import FAILED, load_metrics

    if not getattr(launcher, "fail_fast", False) or launcher.stopped_by is not None:
        return None
    _, status, reason = load_metrics(job.dir)
    if status != FAILED:
        return None
    launcher.stopped_by = (f"job #{job.idx} failed, and hydra.launcher.fail_fast=true stops the "
                           f"sweep at its first failure")
    book = getattr(launcher, "sweep_book", None)
    if book is not None:  # the sweep ends as this job did, with its exit code
        book.stopped_at(job.dir)
    log.error(f"job #{job.idx} ({' '.join(filter_overrides(job.overrides))}) failed: "
              f"{str(reason).rstrip('.')}. "
              f"fail_fast: the sweep stops; its other jobs are stopped or not started.")
    return launcher.stopped_by


def mark_not_started(job: Any, reason: str) -> None:
    """A job the sweep never started: its directory keeps its config (to run it later) and a
    metrics.json that says so, which `cnnbench compare` and the sweep summary show; running the
    sweep again runs it there. An earlier attempt's files in its directory are left as they are."""
    from cnnbench.rundir import NOT_STARTED, record_outcome
    from cnnbench.rundir.writer import write_with

    with read_write(job.config.hydra.runtime), open_dict(job.config.hydra.runtime):
        job.config.hydra.runtime.output_dir = str(job.dir)
    write_config_hash(job.dir, job.digest)
    hydra_dir = job.dir / str(job.config.hydra.output_subdir)
    if job.config.hydra.output_subdir is not None and not (hydra_dir / "config.yaml").exists():
        hydra_dir.mkdir(parents=True, exist_ok=True)
        for name, part in (("config.yaml", task_config(job.config)),
                           ("hydra.yaml", OmegaConf.masked_copy(job.config, "hydra")),
                           ("overrides.yaml", job.config.hydra.overrides.task)):
            write_with(hydra_dir / name, lambda tmp, part=part: OmegaConf.save(part, tmp))
    record_outcome(job.dir, NOT_STARTED,
                   f"the sweep was stopped before this job started ({reason})",
                   {"overrides": list(job.overrides), "run_dir": str(job.dir)})
