"""The table of run options (settings/run_options.py) and the parts of cnnbench that read it:
each reader takes from it the keys it has always used (pinned here), every key the shipped
config has is decided by a row or by the stated rule, and the table holds nothing a reader
cannot follow."""
from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from cnnbench.commands.compare import identity as compare_identity
from cnnbench.commands.compare import runs as compare_runs
from cnnbench.errors import UserError
from cnnbench.run import hparams
from cnnbench.settings import identity, resume_policy, run_options
from cnnbench.settings.config_files import compose_config, config_dir
from cnnbench.settings.run_options import (
    CHANGEABLE,
    FIXED,
    ROWS,
    RunOption,
    decided,
    row_for,
)

SPEED_KEYS = ("trainer.eval_batch_size", "trainer.data_on_device", "trainer.compile",
              "trainer.cuda_graph")


def test_config_hash_leaves_out_the_keys_it_left_out_before():
    assert set(identity.IGNORED) == {  # the hydra node was dropped by name before
        "trainer.resume", "trainer.progress", "trainer.device", "trainer.num_workers",
        *SPEED_KEYS, "dataset.root", "hydra",
        "logger"}  # added after runs were identified: left out, earlier identities hold
    assert dict(identity.ADDED_KEYS) == {"optimizer.backbone_lr_scale": 1.0,
                                         "trainer.freeze_backbone_epochs": 0,
                                         "dataset.image_size": None}
    assert {k: dict(v) for k, v in run_options.MOVED_VALUES.items()} == {
        "augmentation._target_": {"cnnbench.engine.augment.BatchAugment":
                                  "cnnbench.augment.BatchAugment"}}


def test_compare_groups_by_the_keys_it_grouped_by_before():
    assert set(compare_identity.NOT_IDENTITY) == {
        "trainer.seed", "trainer.progress", "trainer.device", "trainer.resume",
        "trainer.num_workers", "trainer.checkpoint", "dataset.root", "dataset.download",
        "evaluation.plots", "evaluation.table", "evaluation.misclassified",
        "evaluation.worst_classes", "hydra", "published", "reference",
        "logger"}  # where a run is also logged: runs logged anywhere are repeats of one
    assert dict(compare_identity.OPTION_NAMES) == {
        "optimizer.lr": "lr", "trainer.batch_size": "batch_size", "trainer.epochs": "epochs"}
    assert compare_identity.ADDED_KEYS is identity.ADDED_KEYS


def test_compare_shows_the_run_options_it_showed_before_in_their_order():
    assert compare_runs.OPTION_KEYS == ("model", "dataset", "optimizer", "lr", "scheduler",
                                        "augmentation", "batch_size", "epochs", "seed")
    assert list(compare_runs._CONFIG_KEYS.items()) == [
        ("lr", "optimizer.lr"), ("batch_size", "trainer.batch_size"),
        ("epochs", "trainer.epochs"), ("seed", "trainer.seed")]


def test_a_resume_may_change_the_keys_it_could_change_before():
    assert (  # in this order: the refusal lists them so
        "trainer.epochs", "trainer.device", "trainer.progress", "trainer.num_workers",
        *SPEED_KEYS, "trainer.tta_flip", "trainer.early_stopping.patience", "dataset.root",
        "evaluation", "logger", "hydra") == resume_policy.CHANGEABLE
    assert set(resume_policy.FIXED_HYDRA) == {"hydra.run", "hydra.mode", "hydra.sweep",
                                              "hydra/sweeper"}


@pytest.mark.parametrize("key,allowed", [
    ("trainer.compile", True), ("evaluation.plots", True), ("evaluation", True),
    ("hydra.job.chdir", True), ("hydra.sweeper.direction", True), ("hydra.run.dir", False),
    ("hydra/sweeper", False), ("hydra.mode", False), ("trainer.seed", False),
    ("optimizer.lr", False), ("model", False), ("trainer.resume", False),
    ("trainer.epochsx", False)])
def test_a_resume_tells_changeable_keys_from_fixed_ones_as_it_did(key, allowed):
    assert resume_policy.changeable(key) is allowed


def test_a_refused_resume_lists_what_a_resume_may_change(tmp_path):
    with pytest.raises(UserError) as err:
        resume_policy.check_user_overrides(["model=mlp"], ["model=lenet"], tmp_path)
    assert ("A resume may change only trainer.epochs, trainer.device, trainer.progress, "
            "trainer.num_workers, trainer.eval_batch_size, trainer.data_on_device, "
            "trainer.compile, trainer.cuda_graph, trainer.tta_flip, "
            "trainer.early_stopping.patience, dataset.root, evaluation, logger and hydra.* flags; "
            "nothing was written.") in str(err.value)


def test_hparams_marks_and_names_the_options_it_did_before():
    assert dict(hparams.OVERRIDE_OPTIONS) == {
        "model": "model", "dataset": "dataset", "optimizer": "optimizer",
        "scheduler": "scheduler", "augmentation": "augmentation", "optimizer.lr": "lr",
        "trainer.batch_size": "batch_size", "trainer.epochs": "epochs", "trainer.seed": "seed"}
    assert hparams.ALWAYS_SHOWN == ("model", "dataset", "optimizer", "scheduler", "seed")


def test_a_run_records_its_options_from_the_table_in_their_order():
    from cnnbench.run.provenance import run_options as recorded

    choices = {"model": "timm", "dataset": "cifar10", "optimizer": "sgd", "scheduler": "none",
               "augmentation": "cutout"}
    cfg = compose_config([f"{k}={v}" for k, v in choices.items()] + ["trainer.seed=3"])
    assert list(recorded(choices, cfg).items()) == [
        ("model", "timm/resnet18"), ("dataset", "cifar10"), ("optimizer", "sgd"),
        ("lr", 0.01), ("scheduler", "none"), ("augmentation", "cutout"), ("batch_size", 128),
        ("epochs", 10), ("seed", 3)]


def _leaves(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def shipped_keys() -> set[str]:
    """Every key of the composed default config and of every conf/<group>/<option>.yaml (a
    `@package _global_` file's keys as they are, a group option's under the group's name)."""
    keys = set(_leaves(OmegaConf.to_container(compose_config([]), resolve=False)))
    for group in (folder for folder in config_dir().iterdir() if folder.is_dir()):
        for option in (f for f in group.iterdir() if f.name.endswith(".yaml")):
            text = option.read_text()
            data = yaml.safe_load(text) or {}
            data.pop("defaults", None)
            prefix = "" if "@package _global_" in text else f"{group.name}."
            keys.update(prefix + key for key in _leaves(data))
    return keys


def test_every_key_of_the_shipped_config_is_decided_by_a_row_or_the_stated_rule():
    keys = shipped_keys()
    assert {"trainer.compile", "evaluation.shifts", "dataset.path", "reference.note",
            "hydra.sweeper.direction", "model.name", "optimized_metric"} <= keys
    assert sorted(k for k in keys if not decided(k)) == []


def test_a_key_nobody_decided_is_caught():
    for key in ("trainer.new_speed_option", "evaluation.new_plot", "dataset.new_knob",
                "new_top_level"):
        assert not decided(key), key
    for key in ("model.width", "optimizer.betas", "trainer.checkpoint.save_best",
                "hydra.job.chdir", "published.value"):
        assert decided(key), key


def _flips(row: RunOption, column: str) -> int:
    """How often `column` changes on the way from DEFAULT down to `row`."""
    chain = [row]
    while chain[-1] is not run_options.DEFAULT:
        chain.append(run_options.enclosing(chain[-1]))
    return sum(getattr(a, column) != getattr(b, column) for a, b in zip(chain, chain[1:]))


def test_the_table_holds_nothing_its_readers_cannot_follow():
    paths = [row.path for row in ROWS]
    assert len(paths) == len(set(paths)), "a key has two rows"
    for row in ROWS:
        assert row.resume in (CHANGEABLE, FIXED), row
        # the identities drop whole subtrees: no key below one left out can count again
        assert _flips(row, "identity") <= 1 and _flips(row, "compare") <= 1, row
        # a resume allows subtrees, less subtrees just below them (FIXED_HYDRA), no deeper
        assert _flips(row, "resume") <= 2, row
        assert row.option or not row.hparams, row


def test_a_key_the_readers_cannot_follow_is_caught(monkeypatch):
    inside = RunOption("hydra.run.dir.x", resume=CHANGEABLE)  # changeable below fixed below
    orphan = RunOption("trainer.device.x", identity=True)     # counted below a key left out
    monkeypatch.setattr(run_options, "ROWS", (*ROWS, inside, orphan))
    assert _flips(inside, "resume") == 3
    assert _flips(orphan, "identity") == 2


def test_a_key_below_a_row_takes_that_row_and_any_other_key_the_default():
    assert row_for("trainer.checkpoint.save_best").path == "trainer.checkpoint"
    assert row_for("hydra.sweeper.direction").path == "hydra"
    assert row_for("hydra/sweeper").resume == FIXED
    assert row_for("trainer.extra") == RunOption("*") == run_options.DEFAULT
    default = run_options.DEFAULT
    assert (default.identity, default.compare, default.resume, default.option) == (
        True, True, FIXED, None)


@pytest.fixture
def stored_run(tmp_path):
    """A run directory as far as a resume reads it before loading the checkpoint: its overrides
    and a last.pt (empty: loading it is the step after the overrides are checked)."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- dataset=synthetic\n- trainer.seed=42\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    return run


def test_a_resume_refuses_a_fixed_setting_and_names_the_changeable_ones(stored_run, cli):
    proc = cli("train", f"trainer.resume={stored_run}", "trainer.seed=1", "trainer.compile=true",
               cwd=stored_run.parent)
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert "cannot take trainer.seed=1 (the run has 42): its checkpoint" in text  # compile: fine
    listed = [key for key in resume_policy.CHANGEABLE if key != "hydra"]
    assert f"A resume may change only {', '.join(listed)} and hydra.* flags" in text


def test_a_resume_that_changes_only_changeable_settings_gets_past_the_check(stored_run, cli):
    proc = cli("train", f"trainer.resume={stored_run}", "trainer.compile=true",
               "trainer.device=cpu", "evaluation.plots=false", "trainer.epochs=3",
               cwd=stored_run.parent)
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert "keeps the settings it was started with" not in text
    assert "last.pt" in text  # refused one step later: the empty checkpoint
