"""What `cnnbench train -m` prints when its sweep ends: the jobs as `cnnbench compare` shows
them, the outcome of each, and the command that runs the sweep again for those that did not
complete."""
from __future__ import annotations

import shlex
from pathlib import Path

from rich.console import Console

from cnnbench import rundir
from cnnbench.endings import sweep_exit_code
from cnnbench.sweep.outcome import report_sweep, stopper_exit_code


def print_sweep_table(console: Console, sweep_dir: Path) -> None:
    """The sweep's jobs as `cnnbench compare` shows them (seeds as one row), and the command
    that writes the comparison files. A table that cannot be made costs only itself."""
    from cnnbench.commands.compare.command import sweep_table

    try:
        table = sweep_table(sweep_dir, console.width)
    except Exception as err:  # noqa: BLE001 (the jobs' own files are already complete)
        console.print(f"(no table of the jobs: {type(err).__name__}: {err})", markup=False)
        return
    if table is not None:
        console.print(table)
        console.print(f"pictures and CSV: cnnbench compare {shlex.quote(str(sweep_dir))}",
                      markup=False, highlight=False, soft_wrap=True)


SWEEP_AGAIN = ("Run the sweep again for them (the completed jobs are skipped, the others resume "
               "from their last.pt or start again):")
SEARCH_AGAIN = ("Run the search again to resume its stopped trials (its study keeps the others "
                "as they ended):")


def report_failed_jobs(console: Console, sweep_dir: Path, command: str | None = None,
                       search: bool = False) -> int:
    """Print the sweep's summary and, when jobs did not complete, how many and the `command`
    that runs the sweep again for those it would run again: for a sweep, every one but the
    diverged (the same settings diverge again); for a search, the stopped ones only (its failed
    trials are ended in its study). Returns the sweep's exit code (`endings.sweep_exit_code`):
    not 0 exactly when jobs did not complete."""
    print_sweep_table(console, sweep_dir)
    statuses = [status for status, _ in report_sweep(console, sweep_dir)]
    failed = sum(s not in (rundir.COMPLETED, rundir.PRUNED) for s in statuses)  # pruned: by design
    if failed:
        console.print(f"[bold red]{failed} of {len(statuses)} jobs did not complete[/]; "
                      f"see their {rundir.METRICS_FILE}.")
        ended = (rundir.COMPLETED, rundir.PRUNED, rundir.DIVERGED)
        ended += (rundir.FAILED,) if search else ()
        if command is not None and any(s not in ended for s in statuses):
            console.print(SEARCH_AGAIN if search else SWEEP_AGAIN, highlight=False)
            console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
    return sweep_exit_code(statuses, stopper_exit_code(sweep_dir))
