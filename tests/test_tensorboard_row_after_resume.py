"""TensorBoard's HParams row of a resumed run says what the run is now: its options (a run
trained longer shows its new epochs) and how it ended, in one row, not its first part's."""
from __future__ import annotations

from pathlib import Path

from conftest import run_cli

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128", "model=mlp",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false"]


def hparams_rows(run: Path) -> list[dict]:
    """Every HParams session start in the run's event files, in file order (TensorBoard shows
    the first), each as {option: value}."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    rows = []
    for path in sorted(run.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == metadata.SESSION_START_INFO_TAG:
                    start = metadata.parse_session_start_info_plugin_data(
                        value.metadata.plugin_data.content)
                    rows.append({k: v.number_value or v.string_value
                                 for k, v in start.hparams.items()})
    return rows


def scalar_steps(run: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return [s.step for s in events.Scalars(tag)]


def test_a_run_trained_longer_shows_its_new_epochs_in_one_hparams_row(tmp_path):
    run_cli("train", *TINY, "trainer.epochs=1", "hydra.run.dir=r", cwd=tmp_path, check=True)
    assert [row["epochs"] for row in hparams_rows(tmp_path / "r")] == ["1"]
    run_cli("train", "trainer.resume=r", "trainer.epochs=2", cwd=tmp_path, check=True)
    assert [row["epochs"] for row in hparams_rows(tmp_path / "r")] == ["2"]
    assert scalar_steps(tmp_path / "r", "val/acc") == [1, 2]  # the curves of both parts stay
    assert len(list((tmp_path / "r").glob("events.out.tfevents.*"))) == 2


def test_forgetting_the_hparams_keeps_every_other_summary_of_the_event_file(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from cnnbench.run.event_files import forget_hparams
    from cnnbench.run.sinks import tensorboard_hparams

    writer = SummaryWriter(str(tmp_path))
    writer.add_scalar("val/acc", 0.5, 1)
    tensorboard_hparams(writer, {"lr": 0.1}, ["val/acc"])
    writer.add_scalar("val/acc", 0.75, 2)
    writer.add_text("config", "text")
    writer.close()
    assert len(hparams_rows(tmp_path)) == 1
    assert forget_hparams(tmp_path) == sorted(tmp_path.glob("events.out.tfevents.*"))
    assert hparams_rows(tmp_path) == []
    assert scalar_steps(tmp_path, "val/acc") == [1, 2]
    assert forget_hparams(tmp_path) == []  # nothing left to take out: no file rewritten

