"""`trainer.resume=PATH`: find the run a checkpoint belongs to and rebuild its command line.

`cnnbench train trainer.resume=<run directory or its checkpoints/last.pt>` continues that run in
its own directory, with the overrides it was started with (read from `.hydra/overrides.yaml`,
vetted first: see `resume_policy.vet_stored_overrides`). Everything is decided here, on the raw
command line and before Hydra starts, so that a refused resume touches no file of the run.

What a resume may change is the `resume` column of the table of run options
(settings/run_options.py, read through `resume_policy.CHANGEABLE`): `trainer.epochs` (more
epochs: per-batch schedules such as one-cycle and cosine are rebuilt for the new length and
fast-forwarded to the step reached), where and how fast the run goes (device, progress bars,
workers, speed options, the data folder), the evaluation, and `hydra.*` flags other than the
run's directory and mode. Any other override (model, optimizer, scheduler, augmentation, the
dataset, batch size, seed, ...) is refused unless it repeats the run's own value: the
checkpoint's weights, optimizer state and curves belong to those values.

A completed run is left alone ("nothing to do") unless trainer.epochs asks for more epochs than
it trained (than it planned, for a run that stopped at its trainer.target_acc); the advice to
train it longer comes from `longer_overrides` alone. Paths go into overrides quoted for Hydra
(`hydra_quote`), so any directory name works, including a sweep job's
`0_model=mlp,optimizer=sgd`; `resume_command` is the one way advice spells the command that
resumes a run.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from cnnbench.engine.target import stopped_by_target
from cnnbench.errors import UserError
from cnnbench.rundir import (
    CHECKPOINT_DIR,
    COMPLETED,
    HYDRA_DIR,
    last_checkpoint,
    read_metrics,
    run_status,
    runs_inside,
)
from cnnbench.settings.overrides import hydra_quote, hydra_unquote, hydra_value, override_key
from cnnbench.settings.resume_policy import RESUME_KEY


class NothingToResume(Exception):
    """The run asked for is already complete: the message says so; the command exits 0."""


def resume_command(run_dir: str | Path, *overrides: str) -> str:
    """The shell command that resumes the run in `run_dir` (plus `overrides`), for advice: the
    path as it is (trainer.resume takes any path as typed), shell-quoted where it needs it."""
    words = ["cnnbench", "train", f"{RESUME_KEY}={run_dir}", *overrides]
    return " ".join(shlex.quote(w) for w in words)


def continue_advice(run_dir: Path) -> str:
    """How advice says to go on with the run in `run_dir`: resume it where it stopped; for a
    completed run, which a plain resume leaves as it is, train it on (`longer_overrides`)."""
    if run_status(run_dir) != COMPLETED:
        return f"Continue that run with: {resume_command(run_dir)}"
    return (f"That run completed; train it longer with: "
            f"{resume_command(run_dir, *longer_overrides(run_dir))}")


def longer_overrides(run_dir: Path) -> list[str]:
    """What a resume of the completed run in `run_dir` adds so that it trains on; every piece
    of advice that says how to train a run longer takes it from here. A run that early stopping
    ended trains on to the epochs it planned, with early stopping off (with it on, the restored
    count of epochs without progress would stop it again after one); any other run trains
    twice the epochs it trained or planned (a run that stopped at its target has trained its
    plan, so a resume must ask for more than that)."""
    metrics = read_metrics(run_dir)
    planned = early_stop_plan(metrics)
    if planned:
        return [f"trainer.epochs={planned}", "trainer.early_stopping.patience=null"]
    done, planned = (_whole(metrics.get(key)) for key in ("epochs_run", "epochs"))
    return [f"trainer.epochs={2 * max(done, planned, 1)}"]


def early_stop_plan(metrics: dict) -> int:
    """The epochs a run planned when trainer.early_stopping (not its target) ended it before
    them; 0 for any other run."""
    planned = _whole(metrics.get("epochs"))
    stopped = metrics.get("stopped_early") is True and metrics.get("epochs_to_target") is None
    return planned if stopped and planned > _whole(metrics.get("epochs_run")) else 0


def _whole(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def resume_value(args: list[str]) -> str | None:
    """The path given as trainer.resume=..., taken as typed: everything after the first '='
    (a Hydra-quoted path, as resume_command writes it, is unquoted)."""
    value = next((a.split("=", 1)[1] for a in args if override_key(a) == RESUME_KEY), None)
    if not value or value == "null":
        return None
    if not Path(value).expanduser().exists():
        value = hydra_unquote(value)
    return value


def start_again_advice(run: Path) -> str:
    """Why a run that has no last.pt has nothing to resume, and the command that starts it
    again beside it, from its own overrides (when they can be read and trusted)."""
    from cnnbench.run.unresumable import nothing_to_resume, start_again_command
    from cnnbench.rundir import holds_run
    from cnnbench.settings.resume_policy import stored_overrides

    if not holds_run(run):
        return "It is not a cnnbench run directory; give one that has checkpoints/last.pt."
    try:
        again = start_again_command([*stored_overrides(run), f"hydra.run.dir={run}"], run)
    except UserError:
        again = None
    return nothing_to_resume([run], again=again)


def run_dir_of(path: str) -> Path:
    """The run directory of a checkpoint file or run directory `path`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"trainer.resume={path}: no such file or directory. Give the path of a "
                        f"run directory (outputs/runs/...) or of its checkpoints/last.pt.")
    if p.is_dir():
        several = runs_inside(p)
        if several:
            what, example = several
            raise UserError(f"trainer.resume={path}: {what}, and trainer.resume continues one "
                            f"run, e.g. {resume_command(example)} ; to continue a whole sweep, "
                            f"run the sweep's command again with "
                            f"hydra.sweep.dir={hydra_value(str(p))}.")
        if not last_checkpoint(p).is_file():
            raise UserError(f"trainer.resume={path}: {p} has no checkpoints/last.pt, so it "
                            f"cannot be resumed. {start_again_advice(p)}")
        return p.resolve()
    run = p.resolve().parent.parent
    if not (run / HYDRA_DIR).is_dir() or p.resolve().parent.name != CHECKPOINT_DIR:
        raise UserError(f"trainer.resume={path}: the file is not inside a cnnbench run directory "
                        f"(expected <run>/checkpoints/{p.name} with <run>/.hydra/). Point it at "
                        f"the last.pt of a run under outputs/.")
    return run


def resume_arguments(args: list[str]) -> list[str]:
    """Rewrite a `train` command line that has trainer.resume=PATH so that it continues that run:
    the run's own overrides first, then the user's (which win), then the run's directory.
    Raises UserError for a resume that cannot or must not run, NothingToResume for a completed
    run; either way before Hydra starts, so the run's files stay as they are."""
    value = resume_value(args)
    if value is None:
        return args
    from cnnbench.run.checkpoint import load_checkpoint, require_resumable
    from cnnbench.settings.resume_policy import (
        check_user_overrides,
        requested_epochs,
        stored_overrides,
    )

    if any(a in ("-m", "--multirun") for a in args):
        raise UserError("trainer.resume continues one run; it cannot be part of a sweep (-m). "
                        "Resume each job on its own: cnnbench train trainer.resume=<job directory>.")
    run = run_dir_of(value)
    stored = stored_overrides(run)
    user = [a for a in args if not a.startswith("-") and override_key(a) != RESUME_KEY]
    check_user_overrides(user, stored, run)
    checkpoint = Path(value).expanduser().resolve()
    checkpoint = last_checkpoint(checkpoint) if checkpoint.is_dir() else checkpoint
    payload = load_checkpoint(checkpoint)
    done = require_resumable(payload, checkpoint)
    epochs = requested_epochs(user)
    planned = stopped_by_target(payload)  # a run that stopped at its target trained its epochs
    if run_status(run) == COMPLETED and (epochs is None or epochs <= max(done, planned or 0)):
        raise NothingToResume(f"{_how_it_ended(run, done, planned)}; nothing to do. To train "
                              f"it longer: {resume_command(run, *longer_overrides(run))}")
    if epochs is not None and epochs < done:
        raise UserError(f"trainer.epochs={epochs} is fewer than the {done} epochs {run} has "
                        f"already trained. Resume with trainer.epochs={done} or more, or leave "
                        f"trainer.epochs off to train the epochs the run was started with.")
    mine = {override_key(a) for a in user}
    kept = [o for o in stored if override_key(o) not in mine]
    single = ["hydra.mode=RUN"] if any(override_key(o) == "hparams_search" for o in kept) else []
    flags = [a for a in args if a.startswith("-")]
    return [*flags, *kept, *user, f"{RESUME_KEY}={hydra_quote(str(checkpoint))}",
            f"hydra.run.dir={hydra_quote(str(run))}", *single]


def _how_it_ended(run: Path, done: int, planned: int | None) -> str:
    """How the completed run ended, for the "nothing to do" paragraph."""
    if planned:
        return (f"{run} stopped at its target (trainer.target_acc) after epoch {done} of the "
                f"{planned} it planned")
    early = early_stop_plan(read_metrics(run))
    if early:
        return (f"{run} was stopped early (trainer.early_stopping) after epoch {done} of the "
                f"{early} it planned")
    return f"{run} already completed {done} epoch{'s' if done != 1 else ''}"
