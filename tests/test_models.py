"""The model zoo is faithful to the course notebooks: parameter counts, layers, padding, init.

PyTorch seeds (000, 004) are checked by re-typing the seed's own code here, copying our weights
into it and comparing outputs. Keras seeds (001, 002, 003) are checked against the layer table of
the Keras summary the seed prints (output shape and parameters per layer) and Keras's init.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnbench.data.shapes import SHAPES
from cnnbench.errors import UserError
from cnnbench.models import (
    build_model,
    count_parameters,
    model_config,
    model_names,
    model_summary,
)
from cnnbench.models.common import InputTooSmall, probe, smallest_input
from cnnbench.models.keras_compat import TFSamePad2d, same_padding

EVERY_MODEL = {"mlp", "mlp_small", "cnn_simple", "cnn2", "lenet", "lenet_sigmoid", "alexnet",
               "alexnet_small", "vgg", "net1", "net2", "resnet18"}


def zero(t: torch.Tensor) -> bool:
    return float(t.detach().abs().max()) == 0


def fills_uniform_limit(weight: torch.Tensor, limit: float) -> bool:
    """Drawn from U(-limit, limit): the largest |w| is near the limit (thousands of draws) and not
    above it (up to float32 rounding)."""
    top = float(weight.detach().abs().max())
    return 0.9 * limit < top <= limit * (1 + 1e-6)


def build(name: str, dataset: str, **options) -> nn.Module:
    shape = SHAPES[dataset]
    cfg = model_config(name)
    cfg.update(options)
    return build_model(cfg, in_channels=shape.channels, image_size=shape.image_size,
                       num_classes=shape.num_classes, name=name)


def same_function(ours: nn.Module, seed: nn.Module, shape: tuple[int, ...]) -> None:
    """Copy our parameters into the seed's model in order; both must compute the same thing."""
    ours_params, seed_params = list(ours.parameters()), list(seed.parameters())
    assert [p.shape for p in ours_params] == [p.shape for p in seed_params]
    with torch.no_grad():
        for a, b in zip(ours_params, seed_params):
            b.copy_(a)
    ours.eval(), seed.eval()
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), seed(x), rtol=1e-5, atol=1e-5)


def keras_summary(model: nn.Module, shape: tuple[int, ...]) -> list[tuple[str, tuple, int]]:
    """(kind, output shape, parameters) of each layer Keras's summary lists, channels first."""
    kinds = {nn.Conv2d: "conv", nn.Linear: "dense", nn.MaxPool2d: "pool", nn.AvgPool2d: "pool",
             nn.Flatten: "flatten"}
    rows, hooks = [], []
    for layer in model.modules():
        kind = kinds.get(type(layer))
        if kind:
            hooks.append(layer.register_forward_hook(
                lambda m, i, o, kind=kind: rows.append(
                    (kind, tuple(o.shape[1:]), sum(p.numel() for p in m.parameters())))))
    model.eval()(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return rows


def test_every_seed_model_has_a_config():
    assert set(model_names()) >= EVERY_MODEL


# -- source 001 (Keras): MLP and LeNet-5 on MNIST ---------------------------------------------------

def test_mlp_matches_seed_001_summary_and_keras_init():
    model = build("mlp", "mnist")
    assert count_parameters(model) == 188_660
    assert keras_summary(model, (1, 28, 28)) == [
        ("flatten", (784,), 0), ("dense", (200,), 157_000), ("dense", (150,), 30_150),
        ("dense", (10,), 1_510)]
    first = model[1]
    limit = math.sqrt(6 / (784 + 200))  # Keras GlorotUniform
    assert fills_uniform_limit(first.weight, limit)
    assert all(zero(m.bias) for m in model if isinstance(m, nn.Linear))


def test_lenet_matches_seed_001_summary_and_seed_004_code():
    model = build("lenet", "mnist")
    assert count_parameters(model) == 44_426
    assert keras_summary(model, (1, 28, 28)) == [
        ("conv", (6, 24, 24), 156), ("pool", (6, 12, 12), 0), ("conv", (16, 8, 8), 2_416),
        ("pool", (16, 4, 4), 0), ("flatten", (256,), 0), ("dense", (120,), 30_840),
        ("dense", (84,), 10_164), ("dense", (10,), 850)]

    class SeedLeNet5(nn.Module):  # source 004, verbatim
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, kernel_size=5)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
            self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
            self.fc1 = nn.Linear(16 * 4 * 4, 120)
            self.relu3 = nn.ReLU()
            self.fc2 = nn.Linear(120, 84)
            self.relu4 = nn.ReLU()
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            x = x.view(-1, 16 * 4 * 4)
            x = self.relu3(self.fc1(x))
            x = self.relu4(self.fc2(x))
            return self.fc3(x)

    same_function(model, SeedLeNet5(), (1, 28, 28))
    keras = build("lenet", "mnist", init="keras")
    assert all(zero(m.bias) for m in keras.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))


# -- source 000 (PyTorch): the five CIFAR-100 models -------------------------------------------------

def test_cnn_simple_is_seed_000_model_cnn():
    model = build("cnn_simple", "cifar100")
    assert count_parameters(model) == 275_396  # the seed's text
    seed = nn.Sequential()
    seed.add_module("conv1", nn.Conv2d(in_channels=3, out_channels=8, kernel_size=3, padding=1))
    seed.add_module("acti1", nn.LeakyReLU(negative_slope=0.1))
    seed.add_module("pool1", nn.MaxPool2d(kernel_size=2))
    seed.add_module("flatten", nn.Flatten())
    seed.add_module("fc1", nn.Linear(in_features=8 * 16 * 16, out_features=128))
    seed.add_module("relu2", nn.ReLU())
    seed.add_module("fc2", nn.Linear(in_features=128, out_features=100))
    same_function(model, seed, (3, 32, 32))


def test_cnn2_is_seed_000_cnn_2_0():
    model = build("cnn2", "cifar100")
    assert count_parameters(model) == 10_492  # the seed's text
    seed = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=8, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope=0.1),
        nn.MaxPool2d(kernel_size=2),
        nn.Conv2d(in_channels=8, out_channels=16, kernel_size=3, padding=1),
        nn.LeakyReLU(negative_slope=0.1),
        nn.MaxPool2d(kernel_size=2),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 8),
        nn.LeakyReLU(negative_slope=0.1),
        nn.Linear(8, 100),
    )
    same_function(model, seed, (3, 32, 32))


def test_mlp_small_is_seed_000_mlp():
    model = build("mlp_small", "cifar100")
    assert count_parameters(model) == 275_255  # 3072*85+85 + 85*75+75 + 75*100+100
    seed = nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features=3 * 32 * 32, out_features=85),
        nn.LeakyReLU(negative_slope=0.1),
        nn.Linear(in_features=85, out_features=75),
        nn.LeakyReLU(negative_slope=0.1),
        nn.Linear(in_features=75, out_features=100),
    )
    same_function(model, seed, (3, 32, 32))


def test_lenet_sigmoid_is_seed_000_lenet():
    model = build("lenet_sigmoid", "cifar100")
    assert count_parameters(model) == 90_776
    seed = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=6, kernel_size=5, padding="same"),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2),
        nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2),
        nn.Flatten(),
        nn.Linear(in_features=16 * 6 * 6, out_features=120),
        nn.Sigmoid(),
        nn.Linear(in_features=120, out_features=84),
        nn.Sigmoid(),
        nn.Linear(in_features=84, out_features=100),
    )
    same_function(model, seed, (3, 32, 32))


def test_alexnet_small_is_seed_000_alexnet():
    model = build("alexnet_small", "cifar100")
    assert count_parameters(model) == 24_711_140
    seed = nn.Sequential(
        nn.Conv2d(in_channels=3, out_channels=96, kernel_size=3),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(in_channels=96, out_channels=256, kernel_size=3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(in_channels=256, out_channels=384, kernel_size=3, padding="same"),
        nn.ReLU(),
        nn.Conv2d(in_channels=384, out_channels=384, kernel_size=3, padding="same"),
        nn.ReLU(),
        nn.Conv2d(in_channels=384, out_channels=256, kernel_size=3, padding="same"),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=3),
        nn.Flatten(),
        nn.Linear(in_features=1024, out_features=4096),
        nn.ReLU(),
        nn.Dropout(p=0.5),
        nn.Linear(in_features=4096, out_features=4096),
        nn.ReLU(),
        nn.Dropout(p=0.5),
        nn.Linear(in_features=4096, out_features=100),
    )
    same_function(model, seed, (3, 32, 32))


# -- source 004 (PyTorch): AlexNetCIFAR ------------------------------------------------------------

def test_alexnet_is_seed_004_alexnet_cifar():
    model = build("alexnet", "cifar10")
    assert count_parameters(model) == 56_826_698
    features = nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )
    classifier = nn.Sequential(
        nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, 10),
    )
    seed = nn.Sequential(features, nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(), classifier)
    same_function(model, seed, (3, 32, 32))


# -- source 002 (Keras): net_1 and net_2 ----------------------------------------------------------

def test_net1_matches_seed_002_summaries():
    cifar = build("net1", "cifar10")
    assert count_parameters(cifar) == 2_117_962  # Fig. 3 of the seed
    assert keras_summary(cifar, (3, 32, 32)) == [
        ("conv", (32, 32, 32), 896), ("conv", (64, 32, 32), 18_496), ("pool", (64, 16, 16), 0),
        ("flatten", (16_384,), 0), ("dense", (128,), 2_097_280), ("dense", (10,), 1_290)]
    assert count_parameters(build("net1", "mnist")) == 1_625_866
    # MaxPooling2D(padding='same') rounds odd sizes up, where a plain MaxPool2d would drop a row
    odd = build_model(model_config("net1"), in_channels=1, image_size=[7, 7], num_classes=10)
    assert tuple(odd.features(torch.zeros(1, 1, 7, 7)).shape) == (1, 64, 4, 4)
    biases = [m.bias for m in cifar.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(zero(b) for b in biases)  # Keras: zero biases


def test_net2_matches_seed_002_summary_with_tensorflow_padding():
    model = build("net2", "mnist")
    assert count_parameters(model) == 1_625_866  # Fig. 2 of the seed
    assert keras_summary(model, (1, 28, 28)) == [
        ("conv", (32, 28, 28), 320), ("conv", (64, 14, 14), 18_496), ("flatten", (12_544,), 0),
        ("dense", (128,), 1_605_760), ("dense", (10,), 1_290)]


def test_tensorflow_same_padding_is_asymmetric():
    # TensorFlow: output ceil(n / s); an odd total padding puts the extra pixel bottom/right
    assert same_padding(28, 3, 2) == (0, 1)
    assert same_padding(27, 3, 2) == (1, 1)
    assert same_padding(28, 3, 1) == (1, 1)
    assert same_padding(5, 1, 2) == (0, 0)
    # a centre-tap 3x3 kernel with stride 2 samples rows/columns 1, 3, 5... of an even input in
    # TensorFlow (PyTorch's padding=1 would sample 0, 2, 4...), and 0, 2, 4... of an odd one
    conv = nn.Conv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1
    tf_conv = nn.Sequential(TFSamePad2d(3, 2), conv)
    even = torch.arange(36.0).view(1, 1, 6, 6)
    torch.testing.assert_close(tf_conv(even), even[..., 1::2, 1::2])
    odd = torch.arange(49.0).view(1, 1, 7, 7)
    torch.testing.assert_close(tf_conv(odd), odd[..., 0::2, 0::2])


# -- source 003 (Keras): VGG ------------------------------------------------------------------------

def test_vgg_matches_seed_003_layers_init_and_batchnorm():
    model = build("vgg", "cifar10")
    # convs 1,792 + 36,928 + 73,856 + 147,584 + 295,168 + 590,080; BN gamma/beta 1,792;
    # Dense 4096*1024+1024 (three max-pools: 4x4x256 = 4096) and 1024*10+10
    assert count_parameters(model) == 5_352_778
    kinds = [type(m).__name__ for m in model.features]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "Dropout", "Conv2d", "ReLU", "BatchNorm2d",
                     "Dropout", "MaxPool2d",
                     "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "Dropout",
                     "MaxPool2d",
                     "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "Dropout",
                     "MaxPool2d"]
    drops = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.2, 0.2, 0.3, 0.3, 0.3]
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [1024, 10]
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.01)  # Keras 0.99
        # building the model (which probes its shapes) must not touch the running statistics
        assert int(bn.num_batches_tracked) == 0 and zero(bn.running_mean)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:  # HeUniform: limit sqrt(6 / fan_in), zero bias
        limit = math.sqrt(6 / (conv.in_channels * 9))
        assert fills_uniform_limit(conv.weight, limit)
        assert zero(conv.bias)
    dense = [m for m in model.modules() if isinstance(m, nn.Linear)][0]
    limit = math.sqrt(6 / (4096 + 1024))  # GlorotUniform
    assert fills_uniform_limit(dense.weight, limit)


# -- beyond the seeds: ResNet-18 ------------------------------------------------------------------

def test_resnet18_is_cifar_style_and_matches_torchvision():
    import torchvision

    model = build("resnet18", "cifar10")
    assert count_parameters(model) == 11_173_962
    stem = model.features[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    tv = torchvision.models.resnet18(num_classes=10)
    tv.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    assert sorted(p.shape for p in model.parameters()) == sorted(p.shape for p in tv.parameters())
    assert tuple(model.eval()(torch.zeros(2, 3, 32, 32)).shape) == (2, 10)


# -- every model: adapting to the input, and the smallest input -----------------------------------

@pytest.mark.parametrize("name", sorted(EVERY_MODEL))
def test_model_adapts_to_channels_size_and_classes(name):
    model = build_model(model_config(name), in_channels=3, image_size=[36, 40], num_classes=7,
                        name=name)
    assert tuple(model.eval()(torch.zeros(2, 3, 36, 40)).shape) == (2, 7)


@pytest.mark.parametrize("name,smallest", [("lenet", 16), ("lenet_sigmoid", 12),
                                           ("cnn_simple", 2), ("cnn2", 4), ("alexnet", 8),
                                           ("alexnet_small", 14), ("vgg", 8)])
def test_smallest_input_is_exact(name, smallest):
    """The searched minimum builds and runs; one pixel less is a clear UserError naming it."""
    cfg = model_config(name)
    model = build_model(cfg, in_channels=1, image_size=[smallest, smallest], num_classes=3)
    assert tuple(model.eval()(torch.zeros(1, 1, smallest, smallest)).shape) == (1, 3)
    small = smallest - 1
    with pytest.raises(InputTooSmall) as err:
        build_model(cfg, in_channels=1, image_size=[small, smallest], num_classes=3, name=name)
    message = str(err.value)
    assert f"'{name}'" in message and f"1x{small}x{smallest}" in message
    assert f"at least {smallest}x{smallest}" in message
    assert isinstance(err.value, UserError)


def test_shape_probe_on_meta_agrees_with_a_real_pass():
    model = build_model(model_config("net2"), in_channels=1, image_size=[28, 28], num_classes=10)
    for size in [(1, 1), (5, 9), (27, 28)]:
        assert probe(model.features, 1, size) == probe(model.features, 1, size, device="cpu")
    lenet = build_model(model_config("lenet"), in_channels=1, image_size=[28, 28], num_classes=10)
    assert probe(lenet.features, 1, (15, 15)) is None
    assert probe(lenet.features, 1, (15, 15), device="cpu") is None
    assert smallest_input(lenet.features, 1) == 16


def test_unknown_options_are_user_errors():
    with pytest.raises(UserError, match="model.init"):
        build("mlp", "mnist", init="jax")
    with pytest.raises(UserError, match="model.downsample"):
        build("net1", "mnist", downsample="avg")
    with pytest.raises(UserError, match="Unknown model"):
        model_config("alexnet_huge")


def test_every_model_description_shows_whole_at_80_columns(cli, tmp_path):
    proc = cli("models", "dataset=cifar100", cwd=tmp_path, env={"COLUMNS": "80"}, check=True)
    assert "…" not in proc.stdout and "..." not in proc.stdout.replace("vit_tiny_patch16_224, ...", "")
    shown: dict[str, list[str]] = {}
    name = None
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        assert len(line) <= 80, line
        if len(cells) != 4 or cells[0] == "model":
            continue
        name = cells[0] or name
        shown.setdefault(name, []).append(cells[3])
    assert set(shown) == set(model_names())
    for model in model_names():
        whole = " ".join(shown[model])
        assert whole == model_summary(model) and whole.endswith("."), (model, whole)
    assert " ".join(shown["speed_cnn"]).endswith("then the flattened features and one linear layer.")
