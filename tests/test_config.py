"""Every option of every config group composes, and builds the object it names."""
from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cnnbench.settings.config_files import config_options
from cnnbench.settings.trainer import TrainerSettings

OPTIONS = [(group, name) for group, names in config_options().items() for name in names]


def test_every_group_has_options():
    options = config_options()
    assert {"mnist", "fashion_mnist", "cifar10", "cifar100", "synthetic"} <= set(options["dataset"])
    assert {"mlp", "lenet"} <= set(options["model"])
    assert {"sgd", "adam", "adadelta", "adamw"} <= set(options["optimizer"])
    assert {"none", "plateau", "cosine", "onecycle"} <= set(options["scheduler"])
    assert {"none", "flip_crop", "affine"} <= set(options["augmentation"])


def test_defaults_train_lenet_on_mnist(compose):
    cfg = compose()
    assert cfg.model._target_.endswith("LeNet5")
    assert cfg.dataset.name == "mnist"
    for key in ("dataset.root", "trainer.epochs", "trainer.batch_size", "trainer.device",
                "trainer.amp", "trainer.val_split", "trainer.seed", "optimizer.lr"):
        assert OmegaConf.select(cfg, key, throw_on_missing=True) is not None or key == "dataset.root"


def test_data_root_follows_environment(compose, monkeypatch):
    monkeypatch.setenv("CNNBENCH_DATA", "/somewhere/data")
    assert compose().dataset.root == "/somewhere/data"
    monkeypatch.delenv("CNNBENCH_DATA")
    assert compose().dataset.root == "./data"


@pytest.mark.parametrize("group,name", OPTIONS)
def test_option_composes_and_builds(compose, group, name):
    import torch

    cfg = compose([f"{group}={name}"])
    node = cfg[group]
    if group == "trainer":
        TrainerSettings.from_config(OmegaConf.to_container(node, resolve=True))
    elif group == "dataset":
        assert node.name == name
    elif group == "model":
        model = instantiate(node, in_channels=1, image_size=[28, 28], num_classes=10)
        assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    elif group == "optimizer":  # as a run builds it (optimizer.backbone_lr_scale is cnnbench's)
        from cnnbench.run.build import build_optimizer

        opt = build_optimizer(cfg, torch.nn.Linear(3, 2))
        assert opt.param_groups[0]["lr"] == node.lr
    elif group == "scheduler":
        from cnnbench.engine.schedule import build_schedule

        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
        factory = instantiate(node, _convert_="all") if node.get("_target_") else None
        schedule = build_schedule(factory, opt, epochs=2, steps_per_epoch=5)
        assert (schedule.scheduler is None) == (name == "none")
    elif group == "augmentation":
        aug = instantiate(node, _convert_="all")
        out = aug(torch.rand(4, 1, 28, 28), torch.Generator().manual_seed(0))
        assert out.shape == (4, 1, 28, 28)


def test_adadelta_defaults_to_lr_one(compose):
    assert compose(["optimizer=adadelta"]).optimizer.lr == 1.0


def test_sgd_has_momentum_nesterov_and_weight_decay(compose):
    cfg = compose(["optimizer=sgd", "optimizer.nesterov=true", "optimizer.weight_decay=5e-4"])
    assert cfg.optimizer.momentum == 0.9 and cfg.optimizer.nesterov and cfg.optimizer.weight_decay


@pytest.mark.parametrize("key,value", [
    ("epochs", 0), ("batch_size", 0), ("batch_size", -3), ("val_split", 1.0),
    ("val_split", -0.1), ("device", "gpu"), ("amp", "fp8"), ("epochs", "ten"),
    ("ema_decay", 1.0), ("ema_decay", 0), ("ema_decay", "high"), ("ema_every", 0),
    ("plain_last_epochs", -1),
])
def test_bad_trainer_values_are_user_errors(key, value):
    from cnnbench.errors import UserError

    with pytest.raises(UserError, match=f"trainer.{key}"):
        TrainerSettings.from_config({key: value})


def test_source_checkout_without_install_finds_conf(monkeypatch):
    """On a machine with only PYTHONPATH pointing at the checkout (no pip install)."""
    from cnnbench.settings import config_files
    from cnnbench.settings.config_files import compose_config

    monkeypatch.setattr(config_files, "installed", lambda: False)
    assert config_files.hydra_config_path() == str(config_files.CHECKOUT_CONF)
    assert {"lenet", "mlp"} <= set(config_files.group_options("model"))
    assert compose_config(["model=mlp"]).model._target_.endswith("MLP")
