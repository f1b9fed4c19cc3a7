"""What a command shows, and the same lines in the run's log file.

`RunConsole` is rich's Console with two promises: every line printed also goes to the logger
`cnnbench.console` (which the run's Hydra logging config sends to the run directory's
`train.log`, and nowhere else), and piped output is never broken inside a line (no hard wrap at
80 columns: a path or a number stays whole). `EpochProgress` prints one line per finished epoch
(as torchvision's and timm's logs do), with a live bar for the epoch in progress on a terminal
and a line every so often inside a long epoch when piped.
"""
from __future__ import annotations

import importlib.util
import io
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cnnbench.errors import UserError
from cnnbench.rundir import LOG_FILE, append_text

LOGGER = "cnnbench.console"   # conf/hydra/job_logging/cnnbench.yaml: the run's log file only
PIPED_EVERY_S = 15.0          # piped output: at most one progress line per this many seconds
LOG_WIDTH = 120               # tables in the log file are drawn this wide


class RunConsole(Console):
    """rich's Console; with `logged`, what it prints is also logged, as plain text, one record
    per line (a run's console: its lines go to its train.log; the command's own console, which
    prints before and after the runs, logs nothing, so no run's log gets another's lines).

    `label` (e.g. "job 3") starts every line of a sweep's job, so that the lines of jobs running
    side by side can be told apart."""

    def __init__(self, label: str | None = None, logged: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.is_terminal:
            self.soft_wrap = True  # a pipe or a file: the reader's viewer wraps, not us
        self.label = label
        self.log = logging.getLogger(LOGGER) if logged else None

    def print(self, *objects: Any, logged_as: str | None = None, **kwargs: Any) -> None:
        """console.print; `logged_as`: the plain text the log gets instead (the whole line of
        what the terminal shows shortened to its width)."""
        if self.label and objects and isinstance(objects[0], str):
            label = f"[{self.label}] "
            markup = kwargs.get("markup", self._markup) is not False
            objects = ((escape(label) if markup else label) + objects[0], *objects[1:])
            logged_as = None if logged_as is None else label + logged_as
        super().print(*objects, **kwargs)
        if self.log is not None and self.log.isEnabledFor(logging.INFO) and not self.quiet:
            text = logged_as if logged_as is not None else plain_text(*objects, **kwargs)
            for line in text.splitlines():
                if line.strip():
                    self.log.info(line.rstrip())

    @property
    def line_width(self) -> int:
        """The columns a line has after the label."""
        return self.width - (len(self.label) + 3 if self.label else 0)


def print_fitted(console: Console, shown: str, whole: str) -> None:
    """`shown` on the terminal and `whole` in the log (a RunConsole's); plain text."""
    if isinstance(console, RunConsole):
        console.print(shown, logged_as=whole, markup=False, highlight=False)
    else:
        console.print(shown, markup=False, highlight=False)


def line_width(console: Console) -> int:
    return console.line_width if isinstance(console, RunConsole) else console.width


def plain_text(*objects: Any, **kwargs: Any) -> str:
    """`objects` as console.print would draw them, without colour, `LOG_WIDTH` wide."""
    buffer = io.StringIO()
    plain = Console(file=buffer, width=LOG_WIDTH, color_system=None, force_terminal=False,
                    force_jupyter=False,  # in a notebook: into the buffer, not the cell
                    soft_wrap=True)
    keep = {k: v for k, v in kwargs.items() if k in ("sep", "end", "markup", "emoji")}
    plain.print(*objects, **keep)
    return buffer.getvalue()


def append_to_log(run_dir: Path, text: str) -> None:
    """`text` (rich markup) added to the end of a run's train.log as the lines its console logs
    are ('[time] line'): what is printed after the run's own console has closed (how it was
    interrupted, and how to continue it). A log that is not there, or cannot be written, is
    left as it is: the terminal showed the text."""
    log = Path(run_dir) / LOG_FILE
    if not log.is_file():
        return
    stamp = logging.Formatter().formatTime(logging.makeLogRecord({}))
    lines = [line.rstrip() for line in plain_text(text).splitlines() if line.strip()]
    try:
        append_text(log, "".join(f"[{stamp}] {line}\n" for line in lines))
    except (OSError, UserError):
        pass


def epoch_seconds(seconds: float) -> str:
    """An epoch's time as a log shows it: '2.10s', '12.3s', '1m05s', '2h03m'."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def epoch_fields(row: Mapping[str, Any], epochs: int, best: bool = False,
                 short: bool = False) -> dict[str, str]:
    """The fields of an epoch's line by name, most important first; `short`: without the words
    'loss' and 'acc' (the order says which number is which)."""
    def pair(split: str) -> str:
        loss, acc = row[f"{split}/loss"], 100 * row[f"{split}/acc"]
        return f"{split} {loss:.4f} {acc:.2f}%" if short else \
            f"{split} loss {loss:.4f} acc {acc:.2f}%"

    fields = {"epoch": f"epoch {row['epoch']}/{epochs}", "train": pair("train")}
    if row.get("val/loss") is not None:
        fields["val"] = pair("val")
    if best:
        fields["best"] = "best"
    fields["time"] = epoch_seconds(row["epoch_seconds"])
    if row.get("lr") is not None:
        fields["lr"] = f"lr {row['lr']:.1e}"
    if row.get("images_per_s") is not None:
        fields["speed"] = f"{row['images_per_s']:,.0f} img/s"
    return fields


LINE_ORDER = ("epoch", "train", "val", "lr", "time", "speed", "best")  # as the line reads
DROPPED_FIRST = ("speed", "lr", "time")  # what a narrow terminal loses, in this order


def epoch_line(row: Mapping[str, Any], epochs: int, width: int | None = None,
               best: bool = False) -> str:
    """e.g. 'epoch 3/10  train loss 0.1234 acc 96.12%  val loss 0.1100 acc 96.70%  lr 1.0e-03
    2.10s  62,345 img/s  best' (`best`: the best epoch so far). With a `width`, the line fits it
    where it can: first the words 'loss' and 'acc' go, then the speed, the learning rate and
    the time; without one (the log file) every field is there."""
    full = _joined(epoch_fields(row, epochs, best))
    if width is None or len(full) <= width:
        return full
    fields = epoch_fields(row, epochs, best, short=True)
    line = _joined(fields)
    for name in DROPPED_FIRST:
        if len(line) <= width:
            break
        fields.pop(name, None)
        line = _joined(fields)
    return line


def _joined(fields: Mapping[str, str]) -> str:
    return "  ".join(fields[name] for name in LINE_ORDER if name in fields)


class EpochProgress:
    """The progress of the epochs: a line per finished epoch; inside an epoch, a live bar on a
    terminal (as many columns as fit), a line every `PIPED_EVERY_S` seconds elsewhere."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        # in Jupyter, rich draws the bar in a widget (ipywidgets); without one: lines, as piped
        widget = console.is_jupyter and importlib.util.find_spec("ipywidgets") is not None
        self.live = enabled and (console.is_terminal or widget)
        self.piped = enabled and not self.live
        self.progress = Progress(*bar_columns(console.width), console=console,
                                 disable=not self.live, transient=True)
        self.task = None
        self.epochs = 0
        self.epoch = 0
        self.batches = 0
        self.last_line = 0.0
        self.epoch_start = 0.0
        self.estimated = False
        self.first_report: tuple[int, float] | None = None
        self.device = ""

    def __enter__(self) -> EpochProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def start(self, epochs: int, batches: int, device: str = "") -> None:
        self.epochs, self.batches, self.device = epochs, batches, device
        self.task = self.progress.add_task("", total=batches, stats="", speed="")

    def new_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.last_line = self.epoch_start = time.perf_counter()
        self.first_report = None  # the pace is measured between two reports of one epoch
        self.progress.reset(self.task, description=f"epoch {epoch}/{self.epochs}", stats="",
                            speed="", total=self.batches)

    def batch(self, done: int, loss: float, acc: float, images_per_s: float) -> None:
        stats = f"loss {loss:.4f} acc {100 * acc:.2f}%"
        speed = f"{images_per_s:,.0f} img/s"
        if not self.estimated and (self.live or self.piped) and done < self.batches:
            self.say_estimate(done)
        if self.live:
            self.progress.update(self.task, completed=done, stats=stats, speed=speed)
        elif self.piped and time.perf_counter() - self.last_line >= PIPED_EVERY_S \
                and done < self.batches:
            self.last_line = time.perf_counter()
            self.console.print(f"epoch {self.epoch}/{self.epochs}: {done}/{self.batches} "
                               f"batches ({100 * done / self.batches:.0f}%), {stats} {speed}",
                               markup=False, highlight=False)

    def say_estimate(self, done: int) -> None:
        """Once, early in the first epoch: how long the epochs to go should take, at the pace
        between the first two reports (the first batches pay one-off costs)."""
        now = time.perf_counter()
        if self.first_report is None:
            self.first_report = (done, now)
            return
        self.estimated = True
        first_done, first_time = self.first_report
        per_batch = (now - first_time) / max(done - first_done, 1)
        epochs = self.epochs - self.epoch + 1
        total = (first_time - self.epoch_start) + per_batch * (epochs * self.batches - first_done)
        where = f" on {self.device}" if self.device else ""
        self.console.print(f"{done} batches in {now - self.epoch_start:.1f} s{where}: the "
                           f"{epochs} epoch{'s' if epochs > 1 else ''} to go should take about "
                           f"{duration(total)} of training", markup=False, highlight=False)
        busy = busy_note(*machine_load())
        if busy:
            self.console.print(busy, markup=False, highlight=False)

    def epoch_done(self, row: Mapping[str, Any], best: bool = False) -> None:
        """The epoch's line, fitted to the terminal; the log gets every field."""
        print_fitted(self.console, epoch_line(row, self.epochs, line_width(self.console), best),
                     epoch_line(row, self.epochs, best=best))


def machine_load() -> tuple[float | None, int]:
    """The load average of the last minute (None where the system has none) and the CPU cores
    this process may use."""
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return load, cores


def busy_note(load: float | None, cores: int) -> str | None:
    """What to say when more processes want the CPU than it has cores (a run then takes many
    times longer than on an idle machine); None on a machine with cores to spare."""
    if load is None or load <= max(cores, 1) + 0.5:
        return None
    return (f"the machine is busy: load {load:.1f} on {cores} core{'s' if cores != 1 else ''}; "
            f"this run may be slower than usual")


def duration(seconds: float) -> str:
    """'45 s', '3 min', '1 h 20 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


def bar_columns(width: int) -> list:
    """The live bar's columns for a terminal `width` wide: the epoch, its batches and the
    running train loss and accuracy first, then the bar, the times and the speed as they fit."""
    columns = [TextColumn("[bold]{task.description}"), MofNCompleteColumn()]
    stats = TextColumn("{task.fields[stats]}")
    if width >= 100:
        return columns + [BarColumn(bar_width=24), stats, TextColumn("{task.fields[speed]}"),
                          TimeElapsedColumn(), TimeRemainingColumn()]
    if width >= 64:
        return columns + [BarColumn(bar_width=max(5, width - 64)), stats, TimeElapsedColumn()]
    return columns + [stats]
