"""What TensorBoard's HParams dashboard shows for a run: its options, the ones a sweep varies,
and the metric columns, in the order the dashboard's first columns should have.

TensorBoard's HParams page shows the first five options (those that differ first) and the
first five metrics of the experiment by default. Every completed run writes the same experiment
summary for its sweep, so whichever run TensorBoard reads it from, the table opens on the
options the sweep varies and on test accuracy, test loss, macro F1 and the shift accuracies.

A search's trial that its pruner stopped (`pruned`) is a row of that table too: its options and
its status, with the metrics it has (its curves: val/acc, val/loss, train/acc, train/loss at the
epoch it stopped; no test metrics). It writes no experiment summary of its own, whose columns
would lack the test metrics were TensorBoard to read it first. TensorBoard has no status for a
trial stopped on purpose: a pruned run's status is Unknown (its result was never measured), so
the dashboard's status filter shows or hides pruned trials apart from completed ones (Success).
Runs that end otherwise write no row: a failed or interrupted run is run again in its directory,
and TensorBoard keeps the first status a run's events hold.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from cnnbench.rundir import COMPLETED, PRUNED
from cnnbench.settings.run_options import ALWAYS_MARKED, OPTION_OF_KEY

# Hydra override keys -> run options (cnnbench.run.provenance.run_options): the `option` column
# of the table of run options (settings/run_options.py)
OVERRIDE_OPTIONS = OPTION_OF_KEY
FIRST_METRICS = ("test/acc", "test/loss", "test/macro_f1")
# shown (marked as differing) in every run, so that `tensorboard --logdir outputs`, which reads
# runs of many sweeps and single runs together, always shows what each run was (the table's
# `hparams` column)
ALWAYS_SHOWN = ALWAYS_MARKED
TRAINING_METRICS = ("val/acc", "val/loss", "train/acc", "train/loss")
# a run's final status -> the status of its session in the HParams dashboard (the runs whose
# ending writes their row there)
SESSION_STATUS = {COMPLETED: "STATUS_SUCCESS", PRUNED: "STATUS_UNKNOWN"}


def metric_columns(test_metrics: Iterable[str]) -> list[str]:
    """test acc, loss, macro F1, shift accuracies, the other test metrics, then the curves."""
    tags = list(dict.fromkeys(test_metrics))
    shifts = [t for t in tags if t.startswith("shift/")]
    first = [t for t in FIRST_METRICS if t in tags] + shifts
    rest = [t for t in tags if t not in first]
    return first + rest + list(TRAINING_METRICS)


def swept_options(run_dir: Path, options: Iterable[str]) -> set[str]:
    """The options a Hydra sweep varies, read from the sweep's multirun.yaml (empty for a run).

    A swept optimizer changes the learning rate too (each optimizer has its own default);
    a swept experiment preset may change anything.
    """
    path = Path(run_dir).parent / "multirun.yaml"
    if not path.is_file():
        return set()
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from cnnbench.rundir.stored_text import read_stored_yaml

        task = read_stored_yaml(path)["hydra"]["overrides"]["task"] or []  # plain text only
        overrides = OverridesParser.create().parse_overrides([str(t) for t in task])
    except Exception:  # noqa: BLE001 (an unreadable sweep file only costs the 'differs' marks)
        return set()
    swept = {o.key_or_group for o in overrides if o.is_sweep_override()}
    if any(key.split(".")[0] == "experiment" for key in swept):
        return set(options)
    differs = {OVERRIDE_OPTIONS[k] for k in swept if k in OVERRIDE_OPTIONS}
    if "optimizer" in differs:
        differs.add("lr")
    return differs & set(options)


def shown_options(options: Mapping[str, Any], run_dir: Path) -> tuple[dict[str, Any], set[str]]:
    """The options in the order the dashboard shows them (those marked first) and the marked
    ones: the identifying options and whatever the run's sweep varies. Whole numbers are
    written as text, which the dashboard shows as 128 rather than 128.00."""
    marked = set(ALWAYS_SHOWN) | swept_options(run_dir, options)
    ordered = sorted(options, key=lambda k: (k not in marked, list(options).index(k)))
    values = {k: str(options[k]) if isinstance(options[k], int) and not isinstance(
        options[k], bool) else options[k] for k in ordered}
    return values, marked & set(options)


def log_hparams(tb, options: Mapping[str, Any], run_dir: Path, test_metrics: Iterable[str],
                status: str = COMPLETED) -> None:
    """Write the run's options and its `status` (a final status of SESSION_STATUS) into the
    run's TensorBoard; a completed run's also the sweep's experiment summary."""
    values, marked = shown_options(options, run_dir)
    tb.hparams(values, metric_columns(test_metrics), marked, status=SESSION_STATUS[status],
               experiment=status == COMPLETED)


def end_tensorboard(tb, status: str, options: Mapping[str, Any], run_dir: Path) -> None:
    """Close the TensorBoard of a run that ends with `status` other than completed (which writes
    its row as it is tested); a pruned trial's row is written first."""
    if status == PRUNED:
        log_hparams(tb, options, run_dir, (), status)
    tb.close()
