"""A checkpoint, a run directory or a dataset file is data, never code.

Configs from files someone else wrote are built only through allow-lists of cnnbench's own
classes with plain values; the end-to-end tests plant files that would write a marker file if
anything in them were imported or called, run the real CLI and check that nothing was written.
"""
from __future__ import annotations

import functools

import pytest
import torch

from cnnbench.errors import UserError
from cnnbench.models import build_model, model_config, model_names
from cnnbench.models.registry import MODEL_CLASSES
from cnnbench.safe_build import ALLOWED, build_allowed


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
    from cnnbench.config_files import group_options

    for option in group_options(group):
        cfg = compose([f"{group}={option}"])
        if not cfg[group].get("_target_"):
            continue
        built = build_allowed(cfg[group], group)
        target = ALLOWED[group][cfg[group]._target_]
        if cfg[group].get("_partial_"):
            assert isinstance(built, functools.partial) and built.func is target, option
        else:
            assert isinstance(built, target), option


@pytest.mark.parametrize("group,cfg,message", [
    ("optimizer", {"_target_": "numpy.savetxt", "_partial_": True},
     "optimizer._target_='numpy.savetxt' is refused"),
    ("optimizer", {"_target_": "cnnbench.augment.BatchAugment"},  # right allow-list only
     "optimizer._target_='cnnbench.augment.BatchAugment' is refused"),
    ("scheduler", {"_target_": "torch.optim.lr_scheduler.LambdaLR", "_partial_": True,
                   "lr_lambda": "x"}, "scheduler._target_='torch.optim.lr_scheduler.LambdaLR'"),
    ("augmentation", {"_target_": "cnnbench.augment.BatchAugment",
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
