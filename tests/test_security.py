"""A checkpoint, a run directory or a dataset file is data, never code.

Configs from files someone else wrote are built only through allow-lists of cnnbench's own
classes with plain values; the end-to-end tests plant files that would write a marker file if
anything in them were imported or called, run the real CLI and check that nothing was written.
"""
from __future__ import annotations

import functools

import pytest
import torch

from cnnbench.engine.finetune import without_scale
from cnnbench.engine.safe_build import ALLOWED, as_plain, build_allowed
from cnnbench.errors import UserError
from cnnbench.models import build_model, model_config, model_names
from cnnbench.models.registry import MODEL_CLASSES


def _build(cfg):
    return build_model(cfg, in_channels=1, image_size=[28, 28], num_classes=10)


# -- the model registry ------------------------------------------------------------------------

def test_every_shipped_model_target_is_in_the_registry():
    targets = {str(model_config(name)["_target_"]) for name in model_names()}
    assert targets <= set(MODEL_CLASSES), targets - set(MODEL_CLASSES)
    for name in model_names():
        assert isinstance(_build(model_config(name)), torch.nn.Module), name


@pytest.mark.parametrize("cfg,key,why", [
    ({"_target_": "numpy.savetxt", "fname": "x", "X": [1]}, "model._target_='numpy.savetxt'",
     "cnnbench's own model classes"),
    ({"_target_": "os.system"}, "model._target_='os.system'", "cannot make cnnbench import"),
    ({"_target_": "cnnbench.models.mlp.MLP",
      "hidden": {"_target_": "pathlib.Path.write_text", "self": "x"}},
     "model.hidden", "nested mapping with _target_ inside"),
    ({"_target_": "cnnbench.models.mlp.MLP", "evil": {"_target_": "os.system"}},
     "model.evil", "nested mapping with _target_ inside"),
    ({"_target_": "cnnbench.models.mlp.MLP", "_args_": ["rm -rf /"]}, "model._args_",
     "_target_, _partial_ and _args_"),
    ({"_target_": "cnnbench.models.mlp.MLP", "_partial_": True}, "model._partial_",
     "_target_, _partial_ and _args_"),
    ({"_target_": "cnnbench.models.mlp.MLP", "widths": [1]}, "model.widths",
     "MLP has no option 'widths' (its options: hidden, activation, dropout, init)"),
    ({"_target_": "cnnbench.models.mlp.MLP", "hidden": "200"}, "model.hidden",
     "is not of the type 'hidden' takes (Sequence[int])"),
    ({"_target_": "cnnbench.models.mlp.MLP", "dropout": True}, "model.dropout",
     "True is not of the type 'dropout' takes (float)"),
    ({"_target_": "cnnbench.models.mlp.MLP", "num_classes": 3}, "model.num_classes",
     "comes from the dataset"),
])
def test_the_registry_refuses_what_is_not_a_plain_option(cfg, key, why):
    with pytest.raises(UserError) as err:
        _build(cfg)
    message = str(err.value)
    assert message.startswith(f"{key} is refused: ") and why in message, message
    assert "\n" not in message


def test_normal_model_mistakes_keep_their_messages():
    with pytest.raises(UserError, match="Unknown activation 'nope'"):
        _build({"_target_": "cnnbench.models.mlp.MLP", "activation": "nope"})
    with pytest.raises(UserError, match="Model 'lenet' cannot take 1x4x4 images"):
        build_model(model_config("lenet"), in_channels=1, image_size=[4, 4], num_classes=10,
                    name="lenet")


def test_a_registry_build_is_the_hydra_build(compose):
    """The same model, parameter for parameter, as Hydra's instantiate made before."""
    from hydra.utils import instantiate

    for name in ("mlp", "lenet", "net1"):
        cfg = compose([f"model={name}"]).model
        torch.manual_seed(0)
        ours = _build(cfg)
        torch.manual_seed(0)
        hydras = instantiate(cfg, in_channels=1, image_size=[28, 28], num_classes=10)
        assert type(ours) is type(hydras)
        for a, b in zip(ours.state_dict().values(), hydras.state_dict().values()):
            assert torch.equal(a, b), name


# -- optimizer, scheduler, augmentation --------------------------------------------------------

@pytest.mark.parametrize("group", ["optimizer", "scheduler", "augmentation"])
def test_every_shipped_option_builds_through_the_allow_list(compose, group):
    from cnnbench.settings.config_files import group_options

    for option in group_options(group):
        cfg = compose([f"{group}={option}"])
        if not cfg[group].get("_target_"):
            continue
        options = cfg[group]
        if group == "optimizer":  # cnnbench's own key is taken out first (build_optimizer)
            options, _ = without_scale(as_plain(options))
        built = build_allowed(options, group)
        target = ALLOWED[group][cfg[group]._target_]
        if cfg[group].get("_partial_"):
            assert isinstance(built, functools.partial) and built.func is target, option
        else:
            assert isinstance(built, target), option


@pytest.mark.parametrize("group,cfg,message", [
    ("optimizer", {"_target_": "numpy.savetxt", "_partial_": True},
     "optimizer._target_='numpy.savetxt' is refused"),
    ("optimizer", {"_target_": "cnnbench.engine.augment.BatchAugment"},  # right allow-list only
     "optimizer._target_='cnnbench.engine.augment.BatchAugment' is refused"),
    ("scheduler", {"_target_": "torch.optim.lr_scheduler.LambdaLR", "_partial_": True,
                   "lr_lambda": "x"}, "scheduler._target_='torch.optim.lr_scheduler.LambdaLR'"),
    ("augmentation", {"_target_": "cnnbench.engine.augment.BatchAugment",
                      "flip": {"_target_": "os.system", "command": "touch pwned"}},
     "augmentation.flip is refused: it is a nested mapping with _target_ inside"),
    ("optimizer", {"_target_": "torch.optim.SGD", "_partial_": True, "lr": "0.1"},
     "optimizer.lr is refused: '0.1' is not of the type"),
    ("optimizer", {"_target_": "torch.optim.SGD", "_partial_": "yes"},
     "optimizer._partial_ is refused"),
    ("scheduler", {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "_partial_": True,
                   "mode": "sideways"}, "scheduler.mode is refused: 'sideways'"),
])
def test_build_allowed_refuses_other_targets_and_values(group, cfg, message):
    with pytest.raises(UserError) as err:
        build_allowed(cfg, group)
    assert str(err.value).startswith(message), str(err.value)


# -- end to end: planted files, the real CLI ---------------------------------------------------

TINY = ["dataset=synthetic", "model=mlp", "trainer.epochs=1", "trainer.device=cpu",
        "dataset.train_size=64", "dataset.test_size=32", "trainer.progress=false",
        "evaluation.plots=false", "evaluation.table=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny real run; tests copy it before planting anything."""
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("trained")
    run_cli("train", *TINY, cwd=cwd, check=True)
    (run,) = (cwd / "outputs" / "runs").iterdir()
    return run


def refused_cleanly(proc, marker) -> str:
    """The planted file did nothing: no marker, an error exit, one paragraph, no traceback."""
    text = proc.stdout + proc.stderr
    assert not marker.exists(), f"{marker} was written:\n{text}"
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    (line,) = [l for l in text.splitlines() if l.startswith("error:")]
    return line


def doctored_checkpoint(run, path, edit):
    import yaml

    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    cfg = yaml.safe_load(payload["config"])
    edit(cfg)
    payload["config"] = yaml.safe_dump(cfg)
    torch.save(payload, path)
    return path


def _savetxt_model(marker):
    def edit(cfg):
        cfg["model"] = {"_target_": "numpy.savetxt", "fname": str(marker), "X": [1.0, 2.0]}
    return edit


def _nested_target(marker):
    def edit(cfg):
        cfg["model"]["init"] = {"_target_": "pathlib.Path.write_text", "self": str(marker),
                                "data": "pwned"}
    return edit


def _env_interpolation(marker):
    def edit(cfg):
        cfg["trainer"]["device"] = "${oc.env:HOME}"
        cfg["model"]["activation"] = "${now:%Y}"
    return edit


@pytest.mark.parametrize("edit,why", [
    (_savetxt_model, "model._target_='numpy.savetxt' is refused: a model config can only name "
                     "one of cnnbench's own model classes"),
    (_nested_target, "model.init is refused: it is a nested mapping with _target_ inside"),
    (_env_interpolation, "is an interpolation that would run a resolver"),
])
def test_eval_of_a_planted_checkpoint_runs_nothing(cli, trained, tmp_path, edit, why):
    marker = tmp_path / "pwned"
    checkpoint = doctored_checkpoint(trained, tmp_path / "planted.pt", edit(marker))
    proc = cli("eval", f"checkpoint={checkpoint}", cwd=tmp_path)
    line = refused_cleanly(proc, marker)
    assert f"{checkpoint} is not a checkpoint whose stored config can be trusted" in line, line
    assert why in line, line
    assert not (tmp_path / "outputs").exists()


def test_eval_never_downloads_into_a_stored_root(cli, trained, tmp_path):
    target = tmp_path / "elsewhere"

    def edit(cfg):
        cfg["dataset"] = {"name": "cifar10", "root": str(target), "download": True}

    checkpoint = doctored_checkpoint(trained, tmp_path / "planted.pt", edit)
    proc = cli("eval", f"checkpoint={checkpoint}", cwd=tmp_path)
    line = refused_cleanly(proc, target)
    assert "dataset.download=false" in line, line


def test_eval_run_directory_name_stays_under_outputs_eval(cli, trained, tmp_path):
    payload = torch.load(trained / "checkpoints" / "last.pt", weights_only=True)
    payload["options"]["model"] = "../../../../escaped"
    checkpoint = tmp_path / "renamed.pt"
    torch.save(payload, checkpoint)
    proc = cli("eval", f"checkpoint={checkpoint}", "evaluation.shifts=[]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (out,) = (tmp_path / "outputs" / "eval").iterdir()
    assert "escaped" in out.name  # the name, made harmless, not a path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "renamed.pt"]


def test_stored_dataset_root_and_download_come_from_cnnbench_not_the_file():
    from cnnbench.commands.eval import effective_config

    stored = ("dataset: {name: mnist, root: '${oc.env:CNNBENCH_DATA,./data}', download: true}\n"
              "model: {_target_: cnnbench.models.lenet.LeNet5}\n"
              "scheduler: {max_lr: '${optimizer.lr}'}\noptimizer: {lr: 0.5}\n")
    cfg, _ = effective_config(stored, [])
    assert cfg.dataset.download is False
    assert cfg.dataset._get_node("root")._value() == "${oc.env:CNNBENCH_DATA,./data}"
    assert cfg.scheduler.max_lr == 0.5  # a reference within the file is plain data
    cfg, _ = effective_config(stored.replace("${oc.env:CNNBENCH_DATA,./data}", "/x"),
                              ["dataset.download=true"])  # the user's own command line
    assert cfg.dataset.download is True and cfg.dataset.root == "/x"


def _doctored_run(trained, tmp_path, overrides):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return run


@pytest.mark.parametrize("planted", [
    ["model._target_=numpy.savetxt", "+model.fname={marker}", "+model.X=[1,2]"],
    ["+model.evil._target_=pathlib.Path.write_text", "+model.evil.self={marker}",
     "+model.evil.data=x"],
    ["optimizer._target_=numpy.savetxt", "+optimizer.fname={marker}", "+optimizer.X=[1]"],
    ["+augmentation.flip._target_=pathlib.Path.write_text", "+augmentation.flip.self={marker}",
     "+augmentation.flip.data=x"],
])
def test_resume_from_a_doctored_run_directory_runs_nothing(cli, trained, tmp_path, planted):
    marker = tmp_path / "pwned"
    overrides = [*TINY, *(o.format(marker=marker) for o in planted)]
    run = _doctored_run(trained, tmp_path, overrides)
    proc = cli("train", f"trainer.resume={run}", "trainer.epochs=2", cwd=tmp_path)
    line = refused_cleanly(proc, marker)
    assert "refused" in line or "trusted" in line, line
    assert "cannot make cnnbench import or call" in line or "trusted" in line, line


def _planted_sweep(tmp_path, marker):
    sweep = tmp_path / "sweep"
    hydra = sweep / "0_job" / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "config.yaml").write_text(
        "model:\n  _target_: pathlib.Path.write_text\n  self: " + str(marker) + "\n  data: x\n"
        "optimizer:\n  lr: ${oc.env:HOME}\n"
        "trainer:\n  batch_size: ${now:%Y}\n  epochs: 3\n  seed: 7\n")
    (hydra / "hydra.yaml").write_text(
        "hydra:\n  runtime:\n    choices:\n      model: ${oc.env:HOME}\n      dataset: mnist\n")
    tagged = sweep / "1_job" / ".hydra"
    tagged.mkdir(parents=True)
    (tagged / "config.yaml").write_text(
        f"trainer:\n  epochs: !!python/object/apply:os.system ['touch {marker}']\n")
    return sweep


def test_compare_reads_planted_run_directories_as_text(cli, tmp_path):
    import csv

    marker = tmp_path / "pwned"
    sweep = _planted_sweep(tmp_path, marker)
    outside = tmp_path / "outside.csv"
    for name in ("comparison.csv", "comparison_runs.csv"):  # planted links where compare writes
        (sweep / name).symlink_to(outside)
    refused = cli("compare", str(sweep), cwd=tmp_path)  # not its earlier output: left alone
    assert refused.returncode == 2 and "Traceback" not in refused.stdout + refused.stderr
    assert "is not an earlier output of cnnbench compare" in refused.stdout
    assert not marker.exists() and not outside.exists()
    assert (sweep / "comparison.csv").is_symlink() and (sweep / "comparison_runs.csv").is_symlink()
    for name in ("comparison.csv", "comparison_runs.csv"):
        (sweep / name).unlink()
    proc = cli("compare", str(sweep), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists() and not outside.exists()
    rows = {r["run"]: r for r in csv.DictReader(open(sweep / "comparison_runs.csv"))}
    job = rows["0_job"]
    assert job["dataset"] == "mnist" and job["epochs"] == "3" and job["seed"] == "7"
    assert job["model"] == job["lr"] == job["batch_size"] == ""  # never resolved
    assert rows["1_job"]["epochs"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]


def test_compare_to_an_unwritable_folder_is_one_paragraph(cli, tmp_path):
    sweep = _planted_sweep(tmp_path, tmp_path / "pwned")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = cli("compare", str(sweep), "--out", str(blocker / "out"), cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text, text
    (line,) = [l for l in text.splitlines() if l.startswith("error:")]
    assert f"{blocker} is a file, not a folder, so cnnbench compare cannot write" in line, text
    assert "Give out= a folder's path" in text
