"""Experiment presets: each composes, builds its model for its dataset, and says what the seed did."""
from __future__ import annotations

from importlib import resources

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cnnbench.data.shapes import input_shape
from cnnbench.engine.schedule import build_schedule
from cnnbench.models import build_model
from cnnbench.run.build import build_optimizer
from cnnbench.settings.trainer import TrainerSettings

# preset: (seed, dataset, model, optimizer, lr, batch, epochs, val_split, augmentation, scheduler)
PRESETS = {
    "lenet_mnist": ("004", "mnist", "LeNet5", "SGD", 0.01, 64, 10, 0.0, "none", "none"),
    "alexnet_cifar10": ("004", "cifar10", "AlexNetCIFAR", "SGD", 0.01, 64, 10, 0.0, "flip_crop",
                        "none"),
    "vgg_cifar10": ("003", "cifar10", "VGG", "Adam", 1e-4, 32, 40, 0.2, "keras_like", "plateau"),
    "net1_mnist": ("002", "mnist", "TwoConvNet", "Adadelta", 1e-3, 32, 30, 0.1, "none", "none"),
    "net2_mnist": ("002", "mnist", "TwoConvNet", "Adadelta", 1e-3, 32, 30, 0.1, "none", "none"),
    "net1_cifar10": ("002", "cifar10", "TwoConvNet", "Adadelta", 1e-3, 128, 30, 0.2, "none",
                     "none"),
    "net2_cifar10": ("002", "cifar10", "TwoConvNet", "Adadelta", 1e-3, 128, 30, 0.2, "none",
                     "none"),
    "mlp_mnist": ("001", "mnist", "MLP", "SGD", 0.1, 128, 20, 0.0, "none", "none"),
    "mlp_mnist_affine": ("001", "mnist", "MLP", "SGD", 0.1, 128, 20, 0.0, "affine", "none"),
    "lenet_mnist_keras": ("001", "mnist", "LeNet5", "SGD", 0.1, 128, 20, 0.0, "none", "none"),
    "lenet_mnist_keras_affine": ("001", "mnist", "LeNet5", "SGD", 0.1, 128, 20, 0.0, "affine",
                                 "none"),
    **{f"{m}_cifar100": ("000", "cifar100", cls, "Adam", 1e-3, 256, 50, 0.1, "none", "none")
       for m, cls in [("mlp_small", "MLP"), ("cnn_simple", "SmallCNN"), ("cnn2", "SmallCNN"),
                      ("lenet_sigmoid", "LeNet5"), ("alexnet_small", "AlexNetSmall")]},
}
REPORTED = {"lenet_mnist": 0.988, "alexnet_cifar10": 0.7881, "vgg_cifar10": 0.8344,
            "mlp_mnist": 0.9754}


def preset_files() -> set[str]:
    folder = resources.files("cnnbench.conf") / "experiment"
    return {p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")}


SPEED_RUNS = {"mnist_speedrun", "fashion_speedrun", "fashion_minute"}  # bench/speedrun.py's, tested in test_speed_options


def test_one_preset_per_seed_setup():
    assert preset_files() - SPEED_RUNS == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_composes_and_builds(compose, name):
    seed, dataset, model_cls, opt, lr, batch, epochs, val, aug, sched = PRESETS[name]
    cfg = compose([f"experiment={name}"])
    assert cfg.dataset.name == dataset
    assert cfg.model._target_.endswith(f".{model_cls}")
    assert (cfg.trainer.batch_size, cfg.trainer.epochs, cfg.trainer.val_split) == (batch, epochs, val)
    assert cfg.augmentation == compose([f"augmentation={aug}"]).augmentation
    assert (cfg.scheduler.get("_target_") is None) == (sched == "none")
    assert cfg.reference.seed == seed
    published = cfg.get("published")
    assert (published.value if published else None) == REPORTED.get(name)
    if published:  # what compare and bench/reproduce.py check a reproduction against
        assert published.metric == "test/acc" and published.source.strip()
    assert cfg.reference.material.strip()  # which course material the setup comes from
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    assert settings.early_stopping.restore_best == (name == "vgg_cifar10")

    shape = input_shape(cfg.dataset)
    model = build_model(cfg.model, in_channels=shape.channels, image_size=shape.image_size,
                        num_classes=shape.num_classes, name=name)
    optimizer = build_optimizer(cfg, model)  # as a run builds it
    assert type(optimizer).__name__ == opt and optimizer.param_groups[0]["lr"] == pytest.approx(lr)
    factory = instantiate(cfg.scheduler, _convert_="all") if cfg.scheduler.get("_target_") else None
    build_schedule(factory, optimizer, epochs, steps_per_epoch=10)
    augment = instantiate(cfg.augmentation, _convert_="all")
    x = augment(torch.rand(2, shape.channels, *shape.image_size), torch.Generator().manual_seed(0))
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
    assert torch.isfinite(loss)
    if sum(p.numel() for p in model.parameters()) < 20_000_000:  # the AlexNets: seconds on a CPU
        loss.backward()
        optimizer.step()  # one tiny step: the optimizer's options fit the model


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p[0] in ("001", "002")])
def test_keras_presets_start_from_keras_init(compose, name):
    cfg = compose([f"experiment={name}"])
    assert cfg.model.init == "keras"
    shape = input_shape(cfg.dataset)
    model = build_model(cfg.model, in_channels=shape.channels, image_size=shape.image_size,
                        num_classes=shape.num_classes)
    biases = [m.bias for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(float(b.detach().abs().max()) == 0 for b in biases)


def test_keras_optimizer_defaults(compose):
    adadelta = compose(["experiment=net1_mnist"]).optimizer
    assert (adadelta.lr, adadelta.rho, adadelta.eps) == (0.001, 0.95, 1e-7)
    assert compose(["experiment=vgg_cifar10"]).optimizer.eps == 1e-7
    assert compose(["experiment=cnn2_cifar100"]).optimizer.eps == 1e-8  # PyTorch seed
    sgd = compose(["experiment=mlp_mnist"]).optimizer
    assert (sgd.lr, sgd.momentum, sgd.nesterov) == (0.1, 0.0, False)  # Keras SGD(0.1)


def test_torch_adadelta_is_keras_adadelta():
    """Keras's Adadelta update, written out, matches torch.optim.Adadelta step for step."""
    lr, rho, eps = 0.001, 0.95, 1e-7
    w = torch.nn.Parameter(torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64))
    opt = torch.optim.Adadelta([w], lr=lr, rho=rho, eps=eps)
    kw = w.detach().clone()
    acc_grad, acc_delta = torch.zeros_like(kw), torch.zeros_like(kw)
    for _ in range(5):
        opt.zero_grad()
        (w ** 3).sum().backward()
        opt.step()
        g = 3 * kw ** 2
        acc_grad = rho * acc_grad + (1 - rho) * g * g
        delta = torch.sqrt(acc_delta + eps) / torch.sqrt(acc_grad + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        kw = kw - lr * delta
    torch.testing.assert_close(w.detach(), kw)


def test_vgg_plateau_reduces_on_the_epochs_the_seed_log_shows(compose):
    """Source 003's val_loss per epoch; Keras announced lr reductions at epochs 27, 33 and 38."""
    val_loss = [1.4992, 1.3849, 1.1738, 1.1249, 1.0170, 0.9169, 0.8693, 0.8438, 0.8076, 0.8386,
                0.7754, 0.7191, 0.7465, 0.7250, 0.6737, 0.7392, 0.6846, 0.6557, 0.6834, 0.6173,
                0.6164, 0.5831, 0.6406, 0.6413, 0.5886, 0.6247, 0.6768, 0.5423, 0.5632, 0.5863,
                0.5534, 0.5986, 0.5842, 0.5623, 0.5521, 0.5452, 0.5902, 0.5864]
    cfg = compose(["experiment=vgg_cifar10"])
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    schedule = build_schedule(instantiate(cfg.scheduler, _convert_="all"), opt, 40, 10)
    reduced_at = []
    for epoch, loss in enumerate(val_loss, 1):
        before = opt.param_groups[0]["lr"]
        schedule.after_epoch(loss)
        if opt.param_groups[0]["lr"] < before:
            reduced_at.append(epoch)
    assert reduced_at == [27, 33, 38]
    assert opt.param_groups[0]["lr"] == pytest.approx(1.25e-5)
