"""Why a stopped run has no checkpoints/last.pt to resume from, said as it is: no epoch had
finished yet; epochs finished but `trainer.checkpoint.save_last=false` kept no last.pt; or
last.pt could not be written. The advice printed after Ctrl-C takes its words from here."""
from __future__ import annotations

import csv
import io
import shlex
from pathlib import Path
from typing import Sequence

from cnnbench.rundir import (
    HISTORY_FILE,
    HYDRA_DIR,
    best_checkpoint,
    find_run_dirs,
    read_metrics,
)

SAVE_LAST_KEY = "trainer.checkpoint.save_last"
SAVE_LAST_OFF = f"{SAVE_LAST_KEY}=false"


def epochs_finished(run_dir: Path) -> int:
    """The epochs the run finished: the larger of metrics.json's `epochs_run` and the rows of
    history.csv (0 when neither can be read)."""
    recorded = read_metrics(run_dir).get("epochs_run")
    recorded = recorded if isinstance(recorded, int) and not isinstance(recorded, bool) else 0
    from cnnbench.rundir.stored_text import read_stored

    try:  # a regular file of a bounded size: a FIFO planted there does not hang the count
        rows = sum(1 for _ in csv.DictReader(io.StringIO(read_stored(Path(run_dir) / HISTORY_FILE),
                                                         newline="")))
    except (OSError, ValueError, csv.Error):  # ValueError: StoredTextError
        rows = 0
    return max(recorded, rows)


def keeps_last(run_dir: Path) -> bool | None:
    """The run's `trainer.checkpoint.save_last` as its .hydra/config.yaml stores it (None when
    the file or the key cannot be read)."""
    from cnnbench.rundir.stored_text import read_stored_yaml

    try:
        config = read_stored_yaml(Path(run_dir) / HYDRA_DIR / "config.yaml")
        value = config["trainer"]["checkpoint"]["save_last"]
    except (OSError, ValueError, KeyError, TypeError):  # ValueError: StoredTextError
        return None
    return value if isinstance(value, bool) else None


def _epochs(n: int) -> str:
    return "1 epoch" if n == 1 else f"{n} epochs"


def start_again_command(args: Sequence[str], run_dir: Path) -> str:
    """The command that starts a run with nothing to resume again, from the arguments it was
    started with (`args`): in a new folder beside `run_dir` where they chose hydra.run.dir (the
    old one keeps its curves and best.pt), with a last.pt kept where its config kept none."""
    from cnnbench.rundir.naming import free_sibling
    from cnnbench.settings.overrides import hydra_value, override_key

    keep_none = keeps_last(run_dir) is False
    drop = {"hydra.run.dir"} | ({SAVE_LAST_KEY} if keep_none else set())
    words = [a for a in args if override_key(a) not in drop]
    if any(override_key(a) == "hydra.run.dir" for a in args):
        words.append(f"hydra.run.dir={hydra_value(str(free_sibling(run_dir)))}")
    if keep_none:
        words.append(f"{SAVE_LAST_KEY}=true")
    return " ".join(shlex.quote(w) for w in ["cnnbench", "train", *words])


def nothing_to_resume(run_dirs: Sequence[Path], sweep_dir: Path | None = None,
                      again: str | None = None) -> str:
    """What to tell the user when none of `run_dirs` (empty: the runs in `sweep_dir`) has a
    last.pt: why, and what to do (`again`: the command that starts the run again, from
    start_again_command)."""
    if not run_dirs and sweep_dir is not None:
        run_dirs = find_run_dirs(Path(sweep_dir))
    finished = max((epochs_finished(d) for d in run_dirs), default=0)
    save_last_off = any(keeps_last(d) is False for d in run_dirs)
    if not save_last_off:
        if finished:
            text = (f"{_epochs(finished)} had finished, but checkpoints/last.pt could not be "
                    f"written (a full disk, or a folder that cannot be written), so there is "
                    f"nothing to resume: once that is fixed, start it again")
        else:
            text = ("No epoch had finished and no checkpoint was written, so there is nothing "
                    "to resume: start it again")
    elif finished:
        text = (f"{_epochs(finished)} had finished, but no checkpoint to resume from was kept: "
                f"{SAVE_LAST_OFF} keeps no checkpoints/last.pt, so there is nothing to resume: "
                f"start it again")
    else:
        text = (f"No epoch had finished, and {SAVE_LAST_OFF} keeps no checkpoints/last.pt, so "
                f"there is nothing to resume: start it again")
    if again is not None:
        text += f" with:\n  {again}"
    else:
        text += " with the same command"
        if save_last_off:
            text += (", adding trainer.checkpoint.save_last=true to be able to resume it after "
                     "an interruption")
        text += "."
    best = [best_checkpoint(d) for d in run_dirs if best_checkpoint(d).is_file()]
    if best:
        text += (f"\nThe best epoch's weights are kept in {best[-1]}: evaluate them with "
                 f"cnnbench eval checkpoint={shlex.quote(str(best[-1]))}, or classify pictures "
                 f"with cnnbench predict.")
    return text
