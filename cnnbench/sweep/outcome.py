"""A sweep's bookkeeping: its directory, fixed before Hydra starts, and the outcome of every job,
read back from the metrics.json each job wrote (whichever launcher ran it, in this process or
in others)."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console

from cnnbench import rundir


def is_sweep(args: list[str]) -> bool:
    return any(a in ("-m", "--multirun") or a.startswith("hparams_search=") for a in args)


def with_sweep_dir(args: list[str]) -> tuple[list[str], Path | None]:
    """For a sweep, fix its directory up front (unless the user did), so that the outcome of
    every job can be read back afterwards, whichever launcher ran it."""
    if not is_sweep(args):
        return args, None
    from cnnbench.settings.overrides import hydra_unquote

    for arg in args:
        key, _, value = arg.partition("=")
        if key == "hydra.sweep.dir":
            return args, None if "$" in value else Path(hydra_unquote(value))
    from cnnbench.rundir.naming import stamped

    sweep = Path("outputs") / "multirun" / stamped()
    return [*args, f"hydra.sweep.dir={sweep}"], sweep


# Sweep directories the parallel launcher of this process used: `cnnbench train` reads the
# outcome of every job back from there, also when the command line did not fix the directory.
launched_sweep_dirs: list[Path] = []


def launched_sweep_dir() -> Path | None:
    """The sweep directory the parallel launcher used, when the command line did not fix one."""
    return launched_sweep_dirs[-1] if launched_sweep_dirs else None


def sweep_outcomes(sweep_dir: Path) -> list[tuple[str, str | None]]:
    """(status, reason) of each job of a sweep, from the metrics.json each job wrote. Every job
    directory counts, however deep (a subdir pattern, or override values with '/' before job
    names were made safe, nest them); one without a readable metrics.json did not complete."""
    if not sweep_dir.is_dir():
        return []
    return [rundir.load_metrics(job)[1:] for job in rundir.find_run_dirs(sweep_dir)]


def sweep_summary(outcomes: list[tuple[str, str | None]], sweep_dir: Path) -> str:
    """E.g. 'sweep: 4 jobs in DIR: 3 completed, 1 failed (killed by signal 9 (SIGKILL; ...))'."""
    reasons: dict[str, list[str]] = {}
    for status, reason in sorted(outcomes, key=lambda o: o[0] != rundir.COMPLETED):
        reasons.setdefault(status, [])
        if reason and reason not in reasons[status] and status not in (rundir.COMPLETED,
                                                                        rundir.NOT_STARTED):
            reasons[status].append(reason if len(reason) <= 120 else reason[:117] + "...")
    parts = []
    for status, texts in reasons.items():
        n = sum(o[0] == status for o in outcomes)
        more = "; ..." if len(texts) > 2 else ""
        parts.append(f"{n} {status}" + (f" ({'; '.join(texts[:2])}{more})" if texts else ""))
    return (f"sweep: {len(outcomes)} job{'s' if len(outcomes) != 1 else ''} in {sweep_dir}"
            + (f": {', '.join(parts)}" if parts else ""))


def report_sweep(console: Console, sweep_dir: Path) -> list[tuple[str, str | None]]:
    """The outcome of every job, and what this run of a sweep that was run again did."""
    from cnnbench.sweep.plan import read_record, record_summary

    record = read_record(sweep_dir)
    outcomes = sweep_outcomes(sweep_dir)
    outcomes += [(rundir.NOT_STARTED, None) for job in record  # no directory made yet
                 if not rundir.is_run_dir(Path(job.get("run_dir", "")))]
    console.print(sweep_summary(outcomes, sweep_dir), markup=False, highlight=False,
                  soft_wrap=True)
    this_time = record_summary(record)
    if this_time:
        console.print(f"this time: {this_time}", markup=False, highlight=False, soft_wrap=True)
    return outcomes
