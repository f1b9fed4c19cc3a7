"""A sweep's bookkeeping: its directory, fixed before Hydra starts, and the outcome of its jobs:
those of the latest plan in its manifest (sweep.manifest), read back from the metrics.json each
job wrote (whichever launcher ran it, in this process or in others)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console

from cnnbench import rundir
from cnnbench.sweep.manifest import latest_outcome, read_manifest


def is_sweep(args: list[str]) -> bool:
    return any(a in ("-m", "--multirun") or a.startswith("hparams_search=")
               or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in args)


def with_sweep_dir(args: list[str]) -> tuple[list[str], Path | None]:
    """For a sweep, fix its directory before Hydra starts, so that everything after (the lock,
    the outcome of every job, the command that runs it again) knows it, whichever launcher ran
    it: the user's hydra.sweep.dir (one with interpolations, e.g. ${now:%H-%M}, resolved once
    here and passed on as the path it names), else a new one under outputs/multirun/."""
    if not is_sweep(args):
        return args, None
    from cnnbench.settings.output_dirs import SWEEP_DIR, given_dir, with_resolved_dir

    args = with_resolved_dir(args, SWEEP_DIR)
    given = given_dir(args, SWEEP_DIR)
    if given is not None:
        return args, given
    from cnnbench.rundir.naming import stamped

    sweep = Path("outputs") / "multirun" / stamped()
    return [*args, f"{SWEEP_DIR}={sweep}"], sweep


def sweep_outcomes(sweep_dir: Path) -> list[tuple[str, str | None]]:
    """(status, reason) of each job of a sweep: the latest plan's jobs in its manifest. A sweep
    directory without a manifest counts every run directory below it, however deep (a subdir
    pattern, or override values with '/' before job names were made safe, nest them); one
    without a readable metrics.json did not complete."""
    manifest = read_manifest(sweep_dir)
    if manifest is not None:
        return [latest_outcome(manifest.path_of(job)) for job in manifest.current()]
    if not sweep_dir.is_dir():
        return []
    return [rundir.load_metrics(job)[1:] for job in rundir.find_run_dirs(sweep_dir)]


def stopper_exit_code(sweep_dir: Path) -> int | None:
    """The exit code of the job whose ending stopped the sweep (hydra.launcher.fail_fast), as
    its metrics.json records it; None when no job's ending stopped it."""
    from cnnbench.endings import recorded_exit_code

    manifest = read_manifest(sweep_dir)
    stopper = manifest.stopper() if manifest is not None else None
    if stopper is None:
        return None
    metrics, status, _ = rundir.load_metrics(stopper)
    return recorded_exit_code(status, metrics.get("exit_code"))


def earlier_jobs_line(sweep_dir: Path) -> str | None:
    """E.g. '2 earlier jobs are no longer part of this sweep (1 completed, 1 failed): ...';
    None when every job of the manifest is one of the latest plan's."""
    manifest = read_manifest(sweep_dir)
    earlier = manifest.earlier() if manifest is not None else []
    if not earlier:
        return None
    counts = Counter(latest_outcome(manifest.path_of(job))[0] for job in earlier)
    n = len(earlier)
    return (f"{n} earlier job{'s are' if n != 1 else ' is'} no longer part of this sweep "
            f"({', '.join(f'{k} {status}' for status, k in sorted(counts.items()))}): the "
            f"command line changed since {'they' if n != 1 else 'it'} ran. "
            f"{'They keep their directories' if n != 1 else 'It keeps its directory'} and "
            f"{'do' if n != 1 else 'does'} not count.")


def sweep_summary(outcomes: list[tuple[str, str | None]], sweep_dir: Path) -> str:
    """E.g. 'sweep: 4 jobs in DIR: 3 completed, 1 failed (killed by signal 9 (SIGKILL; ...))';
    a search's trials that its pruner stopped are counted as `pruned`."""
    reasons: dict[str, list[str]] = {}
    for status, reason in sorted(outcomes, key=lambda o: o[0] != rundir.COMPLETED):
        reasons.setdefault(status, [])
        if reason and reason not in reasons[status] and status not in (
                rundir.COMPLETED, rundir.NOT_STARTED, rundir.PRUNED):  # pruned: one reason each
            reasons[status].append(reason if len(reason) <= 120 else reason[:117] + "...")
    parts = []
    for status, texts in reasons.items():
        n = sum(o[0] == status for o in outcomes)
        more = "; ..." if len(texts) > 2 else ""
        parts.append(f"{n} {status}" + (f" ({'; '.join(texts[:2])}{more})" if texts else ""))
    return (f"sweep: {len(outcomes)} job{'s' if len(outcomes) != 1 else ''} in {sweep_dir}"
            + (f": {', '.join(parts)}" if parts else ""))


def report_sweep(console: Console, sweep_dir: Path) -> list[tuple[str, str | None]]:
    """The outcome of every job, the earlier jobs no longer part of the sweep, and what this
    run of a sweep that was run again did."""
    from cnnbench.sweep.plan import record_summary, this_run

    outcomes = sweep_outcomes(sweep_dir)
    lines = [sweep_summary(outcomes, sweep_dir), earlier_jobs_line(sweep_dir)]
    this_time = record_summary(this_run(sweep_dir))
    lines.append(f"this time: {this_time}" if this_time else None)
    for line in filter(None, lines):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    return outcomes
