"""Speed options: compile warm-up, linear lr scaling, fused optimizers, settings checks."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from cnnbench.data import DeviceLoader, Split
from cnnbench.engine.augment import BatchAugment
from cnnbench.engine.runtime import Runtime, fused_options
from cnnbench.engine.warmup import warm_up
from cnnbench.errors import UserError
from cnnbench.settings.trainer import TrainerSettings

CPU = torch.device("cpu")


@pytest.mark.parametrize("key,value", [("compile", "fast"), ("scale_lr", "sqrt"),
                                       ("data_on_device", "maybe"), ("num_workers", -1),
                                       ("base_batch_size", 0)])
def test_bad_speed_options_are_user_errors(key, value):
    with pytest.raises(UserError, match=f"trainer.{key}"):
        TrainerSettings.from_config({key: value})


def test_compile_modes_and_lr_factor():
    assert TrainerSettings.from_config({}).compile_mode is None
    assert TrainerSettings.from_config({"compile": True}).compile_mode == "default"
    assert TrainerSettings.from_config({"compile": "reduce-overhead"}).compile_mode == "reduce-overhead"
    s = TrainerSettings.from_config({"scale_lr": "linear", "batch_size": 512, "base_batch_size": 128})
    assert s.lr_factor() == 4.0
    assert TrainerSettings.from_config({"batch_size": 512}).lr_factor() == 1.0


def test_fused_only_on_cuda_and_only_where_supported():
    cuda = torch.device("cuda")
    assert fused_options(functools.partial(torch.optim.Adam, lr=1e-3), cuda) == {"fused": True}
    assert fused_options(functools.partial(torch.optim.SGD, lr=0.1), cuda) == {"fused": True}
    assert fused_options(functools.partial(torch.optim.Adadelta, lr=1.0), cuda) == {}
    assert fused_options(functools.partial(torch.optim.Adam, lr=1e-3), CPU) == {}
    assert fused_options(functools.partial(torch.optim.Adam, foreach=True), cuda) == {}


def test_warm_up_leaves_the_model_as_it_was():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = Split(torch.randint(0, 255, (50, 1, 8, 8), dtype=torch.uint8), torch.zeros(50).long())
    train = DeviceLoader(split, 16, CPU, (0.5,), (0.5,), shuffle=True)
    test = DeviceLoader(split, 32, CPU, (0.5,), (0.5,))
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append((m.training, i[0].shape[0])))
    seconds = warm_up(model, nn.CrossEntropyLoss(), Runtime(CPU, None, False), train, [test],
                      repeats=1)
    assert seconds >= 0
    # every batch size it will meet: 16 and the last 2 in training, 32 and 18 in evaluation
    assert sorted(calls) == [(False, 18), (False, 32), (True, 2), (True, 16)]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics restored
    assert all(p.grad is None for p in model.parameters()) and model.training


@pytest.mark.parametrize("make_optimizer", [
    lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda params: torch.optim.Adam(params, lr=0.01),
])
def test_warm_up_with_the_optimizer_changes_nothing(make_optimizer):
    """The warm-up's optimizer step and batch preparation leave training exactly as without."""
    def setup():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                              nn.Linear(4 * 6 * 6, 3))
        split = Split(torch.randint(0, 255, (40, 1, 8, 8), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(1)),
                      torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2)))
        loader = DeviceLoader(split, 16, CPU, (0.5,), (0.5,), shuffle=True, seed=3,
                              augment=BatchAugment(flip=True, crop_padding=2))
        return model, make_optimizer(model.parameters()), loader

    def train(model, optimizer, loader):
        for _ in range(2):
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        return model.state_dict()

    runtime = Runtime(CPU, None, False)
    expected = train(*setup())
    model, optimizer, loader = setup()
    warm_up(model, nn.CrossEntropyLoss(), runtime, loader, [], repeats=1, optimizer=optimizer)
    assert not optimizer.state and all(p.grad is None for p in model.parameters())
    got = train(model, optimizer, loader)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_warm_up_with_a_streaming_loader(compose, tmp_path):
    """A compiled run whose data streams (trainer.data_on_device=false) warms up too."""
    from cnnbench.run.lifecycle import TrainingRun

    cfg = compose(["dataset=synthetic", "dataset.train_size=96", "dataset.test_size=32",
                   "model=mlp", "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
                   "trainer.batch_size=32", "trainer.data_on_device=false", "trainer.num_workers=0",
                   "trainer.compile=true", "augmentation=flip_crop", "evaluation.plots=false"])
    metrics = TrainingRun(cfg, tmp_path, {"model": "mlp", "dataset": "synthetic"}).execute()
    assert metrics["status"] == "completed" and metrics["data_path"] == "streaming"
    assert metrics["compile_seconds"] > 0


def test_linear_scaling_reaches_optimizer_and_one_cycle(compose, tmp_path):
    from cnnbench.run.lifecycle import TrainingRun

    cfg = compose(["dataset=synthetic", "dataset.train_size=320", "dataset.test_size=16",
                   "model=mlp", "trainer.epochs=1", "trainer.device=cpu", "trainer.progress=false",
                   "trainer.batch_size=64", "trainer.scale_lr=linear", "trainer.base_batch_size=16",
                   "optimizer=sgd", "optimizer.lr=0.01", "scheduler=onecycle",
                   "trainer.checkpoint.save_best=false", "trainer.checkpoint.save_last=false"])
    metrics = TrainingRun(cfg, tmp_path, {"model": "mlp"}).execute()
    assert metrics["status"] == "completed"
    assert metrics["effective_lr"] == pytest.approx(0.04)
    assert metrics["lr"] == 0.01  # the configured value, as given
    assert "compile_seconds" in metrics and metrics["startup_seconds"] > 0
    assert cfg.optimizer.lr == 0.01  # the run's config is left as the user wrote it
    import csv

    with open(tmp_path / "history.csv") as f:
        first = next(csv.DictReader(f))
    assert float(first["lr"]) == pytest.approx(0.04 / 25)  # one-cycle starts at max_lr / 25


@pytest.mark.parametrize("name,model,dataset", [("mnist_speedrun", "speed_cnn", "mnist"),
                                                ("fashion_speedrun", "speed_cnn2", "fashion_mnist")])
def test_speedrun_presets_compose_and_build(compose, name, model, dataset):
    from hydra.utils import instantiate

    cfg = compose([f"experiment={name}", "trainer.seed=3"])
    assert cfg.dataset.name == dataset and cfg.trainer.seed == 3
    assert cfg.trainer.cuda_graph and cfg.trainer.val_split == 0
    TrainerSettings.from_config(dict(cfg.trainer))
    net = instantiate(cfg.model, in_channels=1, image_size=[28, 28], num_classes=10)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_flip_tta_averages_the_logits_of_the_mirror_image():
    from cnnbench.engine.loop import evaluate

    class EdgeReader(nn.Module):  # class 0 from the left column, class 1 from the right one
        def forward(self, x):
            return torch.stack([x[:, 0, :, 0].mean(1), x[:, 0, :, -1].mean(1)], 1)

    images = torch.zeros(8, 1, 6, 6, dtype=torch.uint8)
    images[:4, :, :, 0] = 255
    images[4:, :, :, -1] = 255
    labels = torch.tensor([0] * 4 + [1] * 4)
    loader = DeviceLoader(Split(images, labels), 3, CPU, (0.0,), (1.0,))
    runtime = Runtime(CPU, None, False)
    assert evaluate(EdgeReader(), loader, nn.CrossEntropyLoss(), runtime)["acc"] == 1.0
    # mirrored, the two columns swap: the mean logits tie, argmax says 0 for every image
    assert evaluate(EdgeReader(), loader, nn.CrossEntropyLoss(), runtime, tta_flip=True)["acc"] == 0.5


def test_cuda_graph_option_is_checked_and_needs_cuda():
    from cnnbench.engine.graphs import StepGraphs
    from cnnbench.engine.runtime import capture_off_reason, make_runtime

    with pytest.raises(UserError, match="cuda_graph"):
        TrainerSettings.from_config({"cuda_graph": True, "compile": "reduce-overhead"})
    assert TrainerSettings.from_config({"cuda_graph": True, "compile": True}).cuda_graph
    assert TrainerSettings.from_config({}).cuda_graph == "auto"  # the default: on where it can be
    assert TrainerSettings.from_config({"compile": "reduce-overhead"}).cuda_graph == "auto"
    with pytest.raises(UserError, match="auto, true or false"):
        TrainerSettings.from_config({"cuda_graph": "always"})
    runtime = make_runtime("cpu", "off", False, None, cuda_graph=True)
    assert runtime.capture_step is False  # CPU: the option is ignored, training is unchanged
    model = nn.Linear(4, 2)
    split = Split(torch.zeros(8, 1, 2, 2, dtype=torch.uint8), torch.zeros(8).long())
    loader = DeviceLoader(split, 4, CPU, (0.5,), (0.5,))
    graphs = StepGraphs(runtime, nn.CrossEntropyLoss(), capture_off_reason(True, runtime))
    assert graphs.step_for(model, loader) is None
    assert graphs.status == "off: CUDA graphs need a CUDA GPU (device cpu)"
    assert not make_runtime("cpu", "off", False, None, cuda_graph="auto").capture_step
