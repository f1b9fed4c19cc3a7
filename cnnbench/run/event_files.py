"""A resumed run's earlier TensorBoard event files, without their HParams summaries.

TensorBoard reads a run's HParams row (its options, its status) from the first HParams
summaries the run's event files hold, and ignores any written later. A resumed run writes its
own as it ends (a completed run trained longer has new `epochs`; a pruned trial resumed by hand
ends `completed`), so before it opens its new event file the earlier summaries are taken out
of the files written before: the row then says what the run is now. Its curves stay as they
are (TensorBoard's purge step drops the epochs the resume trains again).
"""
from __future__ import annotations

import io
from pathlib import Path

from cnnbench.rundir import write_with

EVENT_FILE_GLOB = "events.out.tfevents.*"


def forget_hparams(folder: Path) -> list[Path]:
    """Rewrite each event file in `folder` that holds HParams summaries without them; the
    files rewritten."""
    rewritten = []
    for path in sorted(Path(folder).glob(EVENT_FILE_GLOB)):
        records, dropped = _records_without_hparams(path)
        if dropped:
            write_with(path, lambda tmp, records=records: _write_records(tmp, records))
            rewritten.append(path)
    return rewritten


def _records_without_hparams(path: Path) -> tuple[list[bytes], bool]:
    """The file's records with the HParams summary values left out, and whether any were."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.hparams import metadata

    hparams_tags = {metadata.EXPERIMENT_TAG, metadata.SESSION_START_INFO_TAG,
                    metadata.SESSION_END_INFO_TAG}
    kept, dropped = [], False
    for raw in RawEventFileLoader(str(path)).Load():
        event = event_pb2.Event.FromString(raw)
        values = event.summary.value if event.HasField("summary") else ()
        others = [v for v in values if v.tag not in hparams_tags]
        if len(others) == len(values):
            kept.append(raw)
            continue
        dropped = True
        if others:  # an event that held other summaries too keeps them
            del event.summary.value[:]
            event.summary.value.extend(others)
            kept.append(event.SerializeToString())
    return kept, dropped


def _write_records(path: Path, records: list[bytes]) -> None:
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    for record in records:
        writer.write(record)
    Path(path).write_bytes(buffer.getvalue())
