"""Where a run's results go: the terminal (rich), TensorBoard, history.csv and metrics.json.

Each sink takes plain dicts of numbers; none of them knows about models or configs.
"""
from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping, Sequence

from rich.console import Console
from rich.table import Table

from cnnbench import rundir
from cnnbench.run.event_files import forget_hparams
from cnnbench.run.provenance import NullSink
from cnnbench.rundir import append_text, write_text
from cnnbench.rundir.csv_cells import plain_record
from cnnbench.rundir.stored_text import read_stored


class HistoryCSV:
    """history.csv: one row per epoch, added as soon as the epoch ends."""

    def __init__(self, path: Path, keep_epochs: int | None = None) -> None:
        """Appends to an existing file; with `keep_epochs` (a resume) rows after it are dropped."""
        self.path = path
        self.columns: list[str] | None = None
        if path.exists() and path.stat().st_size:
            try:
                rows = list(csv.reader(io.StringIO(read_stored(path), newline="")))
                self.columns = rows[0]
                kept = [r for r in rows[1:]
                        if r and (keep_epochs is None or int(r[0]) <= keep_epochs)]
            except (OSError, ValueError, IndexError, csv.Error):
                # a damaged file is kept beside the new one, never appended to
                path.replace(path.with_name(path.name + ".unreadable"))
                self.columns = None
                return
            write_text(path, _csv_text([self.columns, *kept]))

    def write(self, row: Mapping[str, Any]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        cells = plain_record(row)
        line = _csv_text([[cells.get(c, "") for c in self.columns]])
        append_text(self.path, _csv_text([self.columns]) + line if new else line)


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class TensorBoardSink:
    """TensorBoard event files in the run directory: one scalar per metric, x-axis = epoch."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text)

    def image(self, tag: str, image, step: int = 0) -> None:
        """An H x W x 3 uint8 image (e.g. a saved PNG read back)."""
        self.writer.add_image(tag, image, step, dataformats="HWC")
        self.writer.flush()

    def png(self, tag: str, png: bytes, height: int, width: int, step: int = 0) -> None:
        """An RGB image already encoded as PNG (the bytes of a picture the run saved)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
        self.writer._get_file_writer().add_summary(  # what add_image writes, minus re-encoding
            Summary(value=[Summary.Value(tag=tag, image=image)]), step)
        self.writer.flush()

    def hparams(self, hparams: Mapping[str, Any], metric_tags: Sequence[str],
                differs: Collection[str] = (), status: str = "STATUS_SUCCESS",
                experiment: bool = True) -> None:
        tensorboard_hparams(self.writer, hparams, metric_tags, differs, status, experiment)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class StepLoss:
    """train/loss_step: the mean training loss of the batches since the last report (the loop
    reports every few batches, with the epoch's running mean), at the global step, so that
    TensorBoard shows the loss within epochs beside the per-epoch curves."""

    def __init__(self, tb, batches_per_epoch: int) -> None:
        self.tb = tb
        self.batches = batches_per_epoch
        self.epoch = 0
        self.last = (0, 0.0)  # (batches, their summed mean losses) at the last report

    def new_epoch(self, epoch: int) -> None:
        self.epoch, self.last = epoch, (0, 0.0)

    def batch(self, done: int, mean_loss: float, *_: float) -> None:
        seen, total = self.last
        if done <= seen:
            return
        window = (mean_loss * done - total) / (done - seen)
        self.last = (done, mean_loss * done)
        self.tb.scalars({"train/loss_step": window}, (self.epoch - 1) * self.batches + done)


def summary_table(title: str, rows: Mapping[str, Any]) -> Table:
    """A two-column table of a run's results; callers format the values (percentages, seconds
    to 0.1, images/s as integers). Paths go on lines of their own (`print_paths`): a table
    would fold them."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


def print_paths(console: Console, paths: Mapping[str, Any]) -> None:
    """'run directory: /the/whole/path', never wrapped or cut."""
    for key, value in paths.items():
        console.print(f"{key}: {value}", markup=False, highlight=False, soft_wrap=True)


def tensorboard_hparams(writer, hparams: Mapping[str, Any], metric_tags: Sequence[str],
                        differs: Collection[str] = (), status: str = "STATUS_SUCCESS",
                        experiment: bool = True) -> None:
    """Log a run's options for TensorBoard's HParams dashboard, in the run's own event file.

    `SummaryWriter.add_hparams` would open a nested run (a subdirectory named by the time);
    here the summaries go into the run itself, so a sweep is one HParams row per job, and the
    metric columns (`metric_tags`, in this order) read the run's own final scalars. `differs`
    names the options that vary between the runs compared: the dashboard shows those first.
    `status` is the session's (a name of TensorBoard's hparams `Status`); without `experiment`
    the run writes its session only, a row of the experiment another run describes.
    """
    from tensorboard.plugins.hparams.api_pb2 import Status
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
              for k, v in hparams.items()}
    summaries = hparams_summaries(values, {tag: 0.0 for tag in metric_tags})
    with _plugin_content(summaries[0]) as content:
        for info in content.experiment.hparam_infos:
            info.differs = info.name in differs
    with _plugin_content(summaries[2]) as content:
        content.session_end_info.status = Status.Value(status)
    file_writer = writer._get_file_writer()  # what add_hparams writes to, minus the subdirectory
    for summary in summaries if experiment else summaries[1:]:
        file_writer.add_summary(summary)
    writer.flush()


@contextlib.contextmanager
def _plugin_content(summary) -> Iterator[Any]:
    """The HParams plugin data of `summary`, to change in place (written back at the end)."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    plugin_data = summary.value[0].metadata.plugin_data
    content = HParamsPluginData.FromString(plugin_data.content)
    yield content
    plugin_data.content = content.SerializeToString()


def open_sinks(run_dir: Path, config_text: str, resumed_at: int | None,
               writer: bool = True, tensorboard: bool = True) -> tuple[Any, Any]:
    """A run's TensorBoard events (with its config as text) and history.csv; a resumed run's
    continue after epoch `resumed_at`. A process that is not the `writer` gets sinks that
    drop everything (DDP ranks > 0); without `tensorboard` (a `logger` list that leaves it
    out) the events are not written. A resumed run's earlier events lose their HParams row,
    which this part writes anew (run.event_files)."""
    if not writer:
        return NullSink(), NullSink()
    if not tensorboard:
        return NullSink(), HistoryCSV(run_dir / rundir.HISTORY_FILE, keep_epochs=resumed_at)
    if resumed_at is not None:  # the row HParams shows is the one this part writes
        forget_hparams(run_dir / rundir.TB_DIR)
    tb = TensorBoardSink(run_dir / rundir.TB_DIR,  # TensorBoard names it by the directory
                         purge_step=resumed_at + 1 if resumed_at is not None else None)
    tb.text("config", "```\n" + config_text + "\n```")
    return tb, HistoryCSV(run_dir / rundir.HISTORY_FILE, keep_epochs=resumed_at)
