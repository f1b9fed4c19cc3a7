"""A run's record: metrics.json (status, reason, phase, every metric) and its identity file.

`RunRecord` is the one writer of a run's metrics.json, so a run's status has one owner.
"""
from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path
from typing import Any, Mapping

from cnnbench.rundir.layout import (
    COMPLETED,
    CONFIG_HASH_FILE,
    FINAL_STATUSES,
    METRICS_FILE,
    NOT_STARTED,
    RUNNING,
    STARTING,
    metrics_file,
)
from cnnbench.rundir.policy import Writer
from cnnbench.rundir.stored_text import read_stored, read_stored_json
from cnnbench.rundir.writer import write_json_atomic, write_text

NO_METRICS, UNREADABLE = f"no {METRICS_FILE}", "unreadable"  # statuses of runs that lack one
KNOWN_STATUSES = (STARTING, RUNNING, *FINAL_STATUSES)  # every status cnnbench writes
# characters that never reach a terminal or a file from a run's files: controls (C0, DEL, C1),
# format characters (bidi overrides, zero-width ones), line and paragraph separators, surrogates
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
_SPACES = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # line breaks and tabs: a space


def shown_text(value: object, limit: int | None = None) -> str:
    """Text read from a run directory (a status, reason, name, option, note), made safe to show
    and to write: line breaks and tabs (newline, U+2028, ...) become a space, every other control,
    format or separator character '?', so nothing in it can move the cursor, hide or reorder
    text, end a Markdown row or a CSV line, or render as a missing glyph. `limit`: at most that
    many characters, '…' in place of the rest. Not a str: its str()."""
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():  # the fast path: printable text has none of them
        text = "".join(" " if c in _SPACES else "?" if unicodedata.category(c) in _HIDDEN
                       else c for c in text)
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def _checked_status(data: dict[str, Any]) -> tuple[str, str | None]:
    """(status, reason) of a metrics.json as shown: a status cnnbench writes, else UNREADABLE
    with the reason; the reason as safe text (None when it is not text)."""
    status, reason = data.get("status"), data.get("reason")
    reason = shown_text(reason) if isinstance(reason, str) and reason else None
    if status in KNOWN_STATUSES:
        return status, reason
    if "status" not in data or status is None:
        return UNREADABLE, f"{METRICS_FILE} gives no status"
    said = f"'{shown_text(status, 40)}'" if isinstance(status, str) else \
        shown_text(json.dumps(status), 40)
    return UNREADABLE, f"status {said} is not one cnnbench writes"


def load_metrics(run_dir: Path) -> tuple[dict[str, Any], str, str | None]:
    """(metrics, status, reason) as the run's metrics.json says; a run without the file is
    NO_METRICS and one whose file cannot be read (or is not a JSON object, or whose status is
    not one cnnbench writes: KNOWN_STATUSES) UNREADABLE, with the reason. The status and reason
    are safe to show (`shown_text`); the other values are the file's own, to be checked by
    whoever shows them. Never raises: a run directory is someone else's files."""
    path = metrics_file(run_dir)
    if not path.is_file():
        return {}, NO_METRICS, f"the run wrote no {METRICS_FILE} (it may not have started)"
    try:
        data = read_stored_json(path)  # a regular file of a bounded size
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        return {}, UNREADABLE, f"{METRICS_FILE}: {shown_text(err, 200)}"
    return data, *_checked_status(data)


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's metrics.json as a dict; {} when it is missing or not a JSON object."""
    return load_metrics(run_dir)[0]


def run_status(run_dir: Path) -> str | None:
    """The run's status, one of KNOWN_STATUSES; None when it has none of them."""
    _, status, _ = load_metrics(run_dir)
    return status if status in KNOWN_STATUSES else None


class RunRecord:
    """The one owner of a run's metrics.json: updates merge into it, `finish` ends it.

    Processes other than the writer (DDP ranks > 0) keep the dict without writing the file.
    `by`: the command writing it, when that is not the run's own training process.
    """

    def __init__(self, run_dir: Path, metrics: Mapping[str, Any], writer: bool = True,
                 by: Writer | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.metrics: dict[str, Any] = dict(metrics)
        self.writer = writer
        self.by = by
        self._phase_start = time.perf_counter()

    def update(self, **values: Any) -> None:
        self.metrics.update(values)
        if self.writer:
            write_json_atomic(metrics_file(self.run_dir), self.metrics, self.by)

    def phase(self, name: str) -> None:
        """Enter a phase of the run ("data", "training", "testing", ...): metrics.json says where
        the run is, and `phase_seconds` how long each finished phase took."""
        now = time.perf_counter()
        previous = self.metrics.get("phase")
        seconds = dict(self.metrics.get("phase_seconds") or {})
        if previous:
            seconds[previous] = round(seconds.get(previous, 0.0) + now - self._phase_start, 4)
        self._phase_start = now
        self.update(phase=name, phase_seconds=seconds)

    def lr_found(self, found: Mapping[str, Any] | None) -> None:
        """`lr_find`: how optimizer.lr=auto chose the run's rate (suggested_lr, method,
        num_steps, start_lr, end_lr); nothing for a rate given by hand (`found` None)."""
        if found is not None:
            self.update(lr_find=dict(found))

    def finish(self, status: str, reason: str | None = None, **values: Any) -> None:
        """The final status; a run that ends early keeps the phase it ended in."""
        ended_in = self.metrics.get("phase")
        self.phase("done")
        extra = {"ended_in_phase": ended_in} if status != COMPLETED else {}
        self.update(status=status, reason=reason, **extra, **values)


def record_outcome(run_dir: Path, status: str, reason: str,
                   details: Mapping[str, Any] | None = None) -> None:
    """Give a run that ended without saying so a final status (e.g. it failed before it began
    training, its process was killed, or its sweep stopped before it started); a final status
    already written is kept."""
    metrics = read_metrics(run_dir)
    if metrics.get("status") not in FINAL_STATUSES:
        write_json_atomic(metrics_file(run_dir),
                          {**metrics, "status": status, "reason": reason, **(details or {})})


def write_config_hash(run_dir: Path, digest: str) -> None:
    if read_config_hash(run_dir) != digest:
        write_text(Path(run_dir) / CONFIG_HASH_FILE, digest + "\n")


def job_starts(run_dir: Path, digest: str) -> None:
    """A run's first act: store its identity, and turn a job its sweep had marked `not started`
    into one that is starting (so that a failure before training is recorded over it)."""
    write_config_hash(run_dir, digest)
    if run_status(run_dir) == NOT_STARTED:
        write_json_atomic(metrics_file(run_dir), {"status": STARTING})


def read_config_hash(run_dir: Path) -> str | None:
    try:
        return read_stored(Path(run_dir) / CONFIG_HASH_FILE, limit=1024).strip() or None
    except (OSError, ValueError):  # StoredTextError: not a small text file
        return None
