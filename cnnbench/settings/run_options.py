"""Every setting of a run and what each part of cnnbench does with it, in one table.

A row names a config key (`trainer.compile`) or a config group (`model`: its value is the
option chosen) and says:

- identity: part of the run's identity, `settings.identity.config_hash`, by which a sweep run
  again in its directory finds each job's earlier attempt (`sweep.plan`). Where and how fast a
  run goes is not.
- compare: part of what `cnnbench compare` groups runs by (runs that differ only in keys
  without it are repeats of one experiment) and of the settings its tables show.
- resume: CHANGEABLE when `trainer.resume` may take a new value of it; FIXED when a resume
  must repeat the run's own value (its checkpoint and curves belong to that value).
- option: its name among the run options metrics.json records (model, lr, ...), which
  compare's per-run columns and TensorBoard's HParams dashboard show, in this table's order.
- hparams: that option is marked (shown first) in HParams for every run; the other options
  are marked only when the run's sweep varies them.
- added_default: a key the shipped config gained after runs began to be identified by their
  config, with its default, which does what the key's absence did: both identities leave the
  key out at that value, so a sweep started before the key continues as the same jobs and
  older runs group with newer ones.
- moved: values the identity reads as others (a class that moved keeps the identity it had:
  runs stored before the move and after it are the same jobs of a sweep).

identity, compare and resume hold for the key and every key below it, unless a row for a key
below says otherwise; the other columns are about the key itself. A key no row covers takes
DEFAULT: in both identities, FIXED on resume, not a run option. In the shipped config that
rule is stated for the keys of the model, optimizer, scheduler and augmentation options
(RECIPE_GROUPS: each option's own hyperparameters); every other key of conf/ is covered by a
row (`decided`), so a new key cannot be added without deciding its columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from cnnbench.settings.config_files import CONFIG_GROUPS

CHANGEABLE, FIXED = "changeable", "fixed"
NOT_ADDED = "<not added>"  # added_default of a key the config had from the start
RECIPE_GROUPS = ("model", "optimizer", "scheduler", "augmentation")


@dataclass(frozen=True)
class RunOption:
    """One row of the table: a key and its columns (the module's docstring says what each
    column means; the defaults are DEFAULT's)."""

    path: str
    identity: bool = True
    compare: bool = True
    resume: str = FIXED
    option: str | None = None
    hparams: bool = False
    added_default: Any = NOT_ADDED
    moved: tuple[tuple[str, str], ...] = ()  # (the value now, the value the identity reads)

    @property
    def group(self) -> bool:
        """A config group: its value is the option chosen (`model=mlp`)."""
        return self.path in CONFIG_GROUPS


DEFAULT = RunOption("*")


def _rows(*paths: str, **columns: Any) -> tuple[RunOption, ...]:
    return tuple(RunOption(path, **columns) for path in paths)


_SPEED = {"identity": False, "resume": CHANGEABLE}  # how fast it runs: a resume may change it

ROWS: tuple[RunOption, ...] = (
    # the run options, in the order metrics.json, compare's columns and HParams give them
    RunOption("model", option="model", hparams=True),
    RunOption("dataset", option="dataset", hparams=True),
    RunOption("optimizer", option="optimizer", hparams=True),
    RunOption("optimizer.lr", option="lr"),
    RunOption("scheduler", option="scheduler", hparams=True),
    RunOption("augmentation", option="augmentation"),
    RunOption("trainer.batch_size", option="batch_size"),
    RunOption("trainer.epochs", option="epochs", resume=CHANGEABLE),  # more epochs: a longer run
    RunOption("trainer.seed", option="seed", hparams=True, compare=False),  # repeats of one run
    # what a resume may change (in the order its refusal lists them)
    *_rows("trainer.device", "trainer.progress", "trainer.num_workers", compare=False, **_SPEED),
    *_rows("trainer.eval_batch_size", "trainer.data_on_device", "trainer.compile",
           "trainer.cuda_graph", **_SPEED),
    *_rows("trainer.tta_flip", "trainer.early_stopping.patience", resume=CHANGEABLE),
    RunOption("dataset.root", compare=False, **_SPEED),
    *_rows("evaluation", "evaluation.enabled", "evaluation.shifts", resume=CHANGEABLE),
    *_rows("evaluation.plots", "evaluation.table", "evaluation.misclassified",
           "evaluation.worst_classes", compare=False, resume=CHANGEABLE),  # what is shown
    # where the run is also logged (MLflow, W&B): its results are the same wherever they go
    RunOption("logger", identity=False, compare=False, resume=CHANGEABLE),
    RunOption("hydra", identity=False, compare=False, resume=CHANGEABLE),  # Hydra's own settings
    *_rows("hydra.run", "hydra.mode", "hydra.sweep", "hydra/sweeper", identity=False,
           compare=False),  # where the run is and what makes it one
    # what a resume must repeat
    RunOption("trainer.resume", identity=False, compare=False),
    RunOption("trainer.checkpoint", compare=False),
    RunOption("trainer.freeze_backbone_epochs", added_default=0),
    *_rows("trainer.amp", "trainer.channels_last", "trainer.val_split", "trainer.label_smoothing",
           "trainer.early_stopping.monitor", "trainer.early_stopping.restore_best",
           "trainer.deterministic", "trainer.target_acc", "trainer.scale_lr",
           "trainer.base_batch_size", "trainer.ema_decay", "trainer.ema_every",
           "trainer.plain_last_epochs", "trainer.ddp_comm_hook", "trainer.sync_batchnorm"),
    RunOption("dataset.download", compare=False),
    RunOption("dataset.image_size", added_default=None),
    *_rows("dataset.name", "dataset.path", "dataset.channels", "dataset.num_classes",
           "dataset.train_size", "dataset.test_size", "dataset.test_split",
           "dataset.split_seed", "dataset.seed"),
    RunOption("optimizer.backbone_lr_scale", added_default=1.0),
    RunOption("augmentation._target_", moved=(("cnnbench.engine.augment.BatchAugment",
                                               "cnnbench.augment.BatchAugment"),)),
    RunOption("optimized_metric"),
    *_rows("published", "reference", compare=False),  # what a preset reproduces, and whence
)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("/"))
    return path[:cut] if cut > 0 else ""


def row_for(path: str) -> RunOption:
    """The row that decides `path`: the one naming it, else the nearest one above it, else
    DEFAULT. Keys are dotted; the choice of one of Hydra's own groups is written with '/'
    (hydra/sweeper), as on the command line."""
    rows = {row.path: row for row in ROWS}
    while path:
        if path in rows:
            return rows[path]
        path = _parent(path)
    return DEFAULT


def enclosing(row: RunOption) -> RunOption:
    """The row that decides the keys just above `row`'s (DEFAULT at the top)."""
    return row_for(_parent(row.path))


def turned(column: str, value: Any) -> tuple[str, ...]:
    """The rows where `column` turns to `value` (the row above holds another), in table order:
    together with the keys below them, the keys that have `value`, unless a row below turns
    back (`FIXED_UNDER_CHANGEABLE`)."""
    return tuple(row.path for row in ROWS if getattr(row, column) == value
                 and getattr(enclosing(row), column) != value)


def decided(path: str) -> bool:
    """Whether the table decides the columns of the shipped config key `path`: a row names it
    or a key above it other than a config group, or it is a key of a RECIPE_GROUPS option."""
    if any(row.path == path for row in ROWS):
        return True
    above = row_for(_parent(path))
    return (above is not DEFAULT and not above.group) or path.split(".")[0] in RECIPE_GROUPS


# What each reader takes from the table.
LEFT_OUT_OF_IDENTITY = turned("identity", False)          # config_hash drops these subtrees
LEFT_OUT_OF_COMPARE = turned("compare", False)            # compare's grouping leaves these out
CHANGEABLE_ON_RESUME = turned("resume", CHANGEABLE)       # a resume may change these ...
FIXED_UNDER_CHANGEABLE = turned("resume", FIXED)          # ... but for these keys below them
RUN_OPTIONS = tuple(row for row in ROWS if row.option)    # metrics.json's options, in order
OPTION_NAMES = tuple(row.option for row in RUN_OPTIONS)
ALWAYS_MARKED = tuple(row.option for row in RUN_OPTIONS if row.hparams)
OPTION_OF_KEY: Mapping[str, str] = MappingProxyType({r.path: r.option for r in RUN_OPTIONS})
KEY_OF_VALUE_OPTION: Mapping[str, str] = MappingProxyType(  # options that are config values
    {r.option: r.path for r in RUN_OPTIONS if not r.group})
ADDED_KEYS: Mapping[str, Any] = MappingProxyType(
    {r.path: r.added_default for r in ROWS if r.added_default != NOT_ADDED})
MOVED_VALUES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {r.path: MappingProxyType(dict(r.moved)) for r in ROWS if r.moved})
