"""Where a run or a sweep may be written, checked before Hydra starts: runs hold no nested runs,
and a sweep directory holds its own jobs only.

- a single run (hydra.run.dir) never at or below a sweep directory: it would not be one of the
  sweep's jobs, and everything that reads the sweep (its outcome, `cnnbench compare`, the sweep
  run again) would find a run there that is not;
- a single run never inside another run's directory, and a sweep never at or inside one: a
  run's folder is read as that one run (compare, eval checkpoint=, trainer.resume= stop at the
  first run directory they meet), so the nested runs would be lost to them, and a sweep's jobs
  would mix with the run's own files;
- a sweep never inside another sweep's directory: its jobs would be read as that sweep's;
- a sweep never in a folder that holds runs but is no sweep's (outputs/runs, outputs): it would
  take those runs for its own jobs.

A resume continues a run where it is, and a sweep run again goes on in its directory, whatever
an older version let in there. Each refusal names a folder that is free.
"""
from __future__ import annotations

import os
from pathlib import Path

from cnnbench.errors import UserError
from cnnbench.rundir import enclosing_run, is_run_dir, runs_inside
from cnnbench.rundir.naming import free_beside
from cnnbench.settings.output_dirs import RUN_DIR, given_dir
from cnnbench.settings.overrides import hydra_value
from cnnbench.sweep.manifest import sweep_holding
from cnnbench.sweep.outcome import is_sweep


def check_run_placement(args: list[str], resuming: bool) -> None:
    """A single run's hydra.run.dir is not at or below a sweep directory, nor inside a run."""
    run_dir = given_dir(args, RUN_DIR)  # its interpolations resolved (output_dirs)
    if run_dir is None or resuming or is_sweep(args):
        return
    value = hydra_value(str(run_dir))
    found = sweep_holding(run_dir)
    if found is not None:
        sweep, marker = found
        inside = Path(os.path.abspath(run_dir)) != sweep
        raise UserError(
            f"hydra.run.dir={value} is {'inside the' if inside else 'the'} sweep directory "
            f"{sweep} (it holds {marker}), and a single run written there would not be one of "
            f"the sweep's jobs: the sweep's outcome, `cnnbench compare` and the sweep run again "
            f"read that directory as the sweep's. Give the run a folder of its own (leave "
            f"hydra.run.dir out, or choose one outside {sweep}); to add a job to the sweep, run "
            f"the sweep's command again with hydra.sweep.dir={sweep} and the new value in its "
            f"list.")
    outer = enclosing_run(run_dir)
    if outer is not None:
        raise UserError(
            f"hydra.run.dir={value} is inside the run directory {outer}, and runs hold no "
            f"nested runs: `cnnbench compare`, eval checkpoint= and trainer.resume= read "
            f"{outer} as that one run, so a run inside it would be lost to them. Give the run "
            f"a folder of its own, e.g. hydra.run.dir="
            f"{hydra_value(str(free_beside(outer, run_dir.name)))} (or leave hydra.run.dir out).")


def check_sweep_placement(sweep_dir: Path | None) -> None:
    """A sweep's directory is not a run's, nor inside one, nor inside another sweep's."""
    if sweep_dir is None:
        return
    here = Path(os.path.abspath(sweep_dir))
    held = sweep_holding(here)
    if held is not None and held[0] == here:  # the sweep itself, run again: it goes on there
        return
    outer = here if is_run_dir(here) else enclosing_run(here)
    if outer is not None:
        where = "the run directory" if outer == here else "inside the run directory"
        free = free_beside(outer, here.name if outer != here else f"{outer.name}_sweep")
        raise UserError(
            f"hydra.sweep.dir={sweep_dir} is {where} {outer}, and a sweep's jobs written there "
            f"would mix with that run's files: `cnnbench compare`, eval checkpoint= and "
            f"trainer.resume= read {outer} as one run. Give the sweep a folder of its own, e.g. "
            f"hydra.sweep.dir={hydra_value(str(free))} (or leave hydra.sweep.dir out).")
    found = sweep_holding(here.parent) if here.parent != here else None
    if found is not None:
        sweep, marker = found
        raise UserError(
            f"hydra.sweep.dir={sweep_dir} is inside the sweep directory {sweep} (it holds "
            f"{marker}), and the jobs of a sweep inside a sweep would be read as that sweep's "
            f"(its outcome, `cnnbench compare`, the sweep run again). Give the sweep a folder "
            f"of its own, e.g. hydra.sweep.dir={hydra_value(str(free_beside(sweep, here.name)))} "
            f"(or, to add jobs to that sweep, run its command again with "
            f"hydra.sweep.dir={hydra_value(str(sweep))}).")
    holding = runs_inside(here) if held is None else None
    if holding is not None:
        phrase, example = holding
        free = free_beside(here, f"{here.name}_sweep")
        raise UserError(
            f"hydra.sweep.dir={sweep_dir}: {phrase} (e.g. {example}) and no sweep's record, "
            f"and a sweep there would take those runs for its own jobs (skip one with the same "
            f"settings as if it had run it, count the others in its outcome). Give the sweep a "
            f"folder of its own, e.g. hydra.sweep.dir={hydra_value(str(free))} (or leave "
            f"hydra.sweep.dir out).")
