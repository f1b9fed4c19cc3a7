"""The on-device loader and the streaming fallback give the same batches for the same seed."""
from __future__ import annotations

import pytest
import torch

from cnnbench.data import DeviceLoader, Split, StreamingLoader, make_loader
from cnnbench.data import loader as loader_module
from cnnbench.data.loader import data_fits_on_device, split_bytes
from cnnbench.engine.augment import BatchAugment

CPU = torch.device("cpu")


def make_split(n: int = 203, channels: int = 3, size: int = 8) -> Split:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return Split(images, torch.arange(n) % 10)


def batches(loader, epochs: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for _ in range(epochs) for x, y in loader]


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [True, False])
def test_streaming_gives_the_same_batches_as_device_loader(workers, shuffle):
    split = make_split()
    common = dict(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), shuffle=shuffle, seed=11,
                  channels_last=True)
    device_batches = batches(DeviceLoader(split, 32, CPU, **common))
    stream_batches = batches(StreamingLoader(split, 32, CPU, num_workers=workers, **common))
    assert len(device_batches) == len(stream_batches) == 2 * 7  # 203 = 6 x 32 + 11
    for (xa, ya), (xb, yb) in zip(device_batches, stream_batches):
        assert torch.equal(ya, yb)
        assert torch.equal(xa, xb)
        assert xa.dtype == torch.float32 and xa.is_contiguous(memory_format=torch.channels_last)
    seen = torch.cat([y for _, y in device_batches[:7]])
    assert sorted(seen.tolist()) == sorted(split.labels.tolist())  # each sample once per epoch
    if shuffle:  # a new order every epoch
        assert not torch.equal(device_batches[0][1], device_batches[7][1])


def test_streaming_matches_with_augmentation_too():
    split = make_split(n=64)
    aug = BatchAugment(flip=True, crop_padding=2, rotation=10, erasing=0.5)
    common = dict(mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True, seed=3, augment=aug)
    a = batches(DeviceLoader(split, 16, CPU, **common), epochs=1)
    b = batches(StreamingLoader(split, 16, CPU, num_workers=0, **common), epochs=1)
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b))


def test_batches_are_normalized_images():
    split = make_split(n=10, channels=1)
    loader = DeviceLoader(split, 10, CPU, mean=(0.5,), std=(0.25,))
    x, y = next(iter(loader))
    expected = (split.images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(y, split.labels)


def test_resuming_restores_the_order():
    split = make_split()
    loader = DeviceLoader(split, 50, CPU, mean=(0.5,) * 3, std=(0.5,) * 3, shuffle=True, seed=5)
    batches(loader, epochs=1)
    state = loader.state_dict()
    expected = batches(loader, epochs=1)
    other = StreamingLoader(split, 50, CPU, mean=(0.5,) * 3, std=(0.5,) * 3, shuffle=True, seed=99,
                            num_workers=0)
    other.load_state_dict(state)
    assert all(torch.equal(ya, yb) for (_, ya), (_, yb) in zip(expected, batches(other, 1)))


def test_make_loader_picks_the_path_and_size_estimate():
    split = make_split(n=20)
    args = (split, 8, CPU, (0.5,) * 3, (0.5,) * 3)
    assert isinstance(make_loader(*args, on_device=True), DeviceLoader)
    assert isinstance(make_loader(*args, on_device=False, num_workers=0), StreamingLoader)
    assert split_bytes(split, None) == 20 * 3 * 8 * 8 + 20 * 8
    assert data_fits_on_device(10**15, CPU)  # on the CPU the data is in host memory already


def test_auto_compares_the_data_with_free_device_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 4000))
    cuda = torch.device("cuda")
    assert data_fits_on_device(400, cuda)       # under half of the free memory
    assert not data_fits_on_device(600, cuda)   # over: stream it


@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2)])
def test_whole_epoch_preparation_matches_per_batch(augment):
    split = make_split(n=100)
    common = dict(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), shuffle=True, seed=4,
                  augment=augment, channels_last=True)
    whole = DeviceLoader(split, 24, CPU, **common)
    per_batch = DeviceLoader(split, 24, CPU, **common)
    assert whole.whole_epoch
    per_batch.whole_epoch = False
    for (xa, ya), (xb, yb) in zip(batches(whole), batches(per_batch)):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
        assert xa.is_contiguous(memory_format=torch.channels_last)


def test_any_callable_augmentation_is_applied_per_batch_with_the_generator():
    split = make_split(n=40)

    def noisy(x, gen):
        return x + torch.rand(x.shape, generator=gen)

    common = dict(mean=(0.5,) * 3, std=(0.5,) * 3, shuffle=True, seed=1, augment=noisy)
    a = batches(DeviceLoader(split, 16, CPU, **common), epochs=1)
    b = batches(StreamingLoader(split, 16, CPU, num_workers=0, **common), epochs=1)
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b))
    plain = batches(DeviceLoader(split, 16, CPU, **{**common, "augment": None}), epochs=1)
    assert not torch.equal(a[0][0], plain[0][0])


def _noisy(x, gen):
    return x + torch.rand(x.shape, generator=gen)


@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2), _noisy])
def test_warm_up_leaves_the_batches_as_they_were(augment):
    """The warm-up prepares a batch with the loader's own generators and puts them back."""
    split = make_split(n=40)
    common = dict(mean=(0.5,) * 3, std=(0.5,) * 3, shuffle=True, seed=1, augment=augment)
    expected = batches(DeviceLoader(split, 16, CPU, **common))
    warmed = DeviceLoader(split, 16, CPU, **common)
    warmed.warm_up()
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb)
               for (xa, ya), (xb, yb) in zip(expected, batches(warmed)))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2)])
@pytest.mark.parametrize("path", ["whole-epoch", "per-batch", "streaming"])
def test_every_batch_has_the_strides_of_the_warm_up_batches(channels, channels_last, augment, path):
    """torch.compile specializes on strides: a batch laid out differently from the warm-up's blank
    batches (one channel: several strides describe the same memory) would compile the model again
    inside the timed epochs."""
    from cnnbench.data import blank_batch

    split = make_split(n=50, channels=channels)
    common = dict(mean=(0.5,) * channels, std=(0.25,) * channels, shuffle=True, seed=1,
                  augment=augment, channels_last=channels_last)
    if path == "streaming":
        loader = StreamingLoader(split, 16, CPU, num_workers=0, **common)
    else:
        loader = DeviceLoader(split, 16, CPU, **common)
        loader.whole_epoch = path == "whole-epoch"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for x, _ in loader:
        assert x.stride() == blank_batch(x.shape, CPU, fmt).stride()
        assert x.is_contiguous(memory_format=fmt)


def test_a_one_channel_batch_laid_out_otherwise_compiles_again():
    """The reason for batch_layout: with dynamic=False, another stride of the size-1 channel
    dimension is another compilation."""
    from cnnbench.data import blank_batch

    compiled = []

    def backend(gm, example_inputs):
        compiled.append(1)
        return gm.forward

    f = torch.compile(lambda x: x * 2, backend=backend, dynamic=False)
    f(blank_batch((4, 1, 8, 8), CPU, torch.channels_last))
    f(blank_batch((4, 1, 8, 8), CPU, torch.channels_last))
    assert len(compiled) == 1
    f(torch.zeros(4, 1, 8, 8).contiguous(memory_format=torch.channels_last))  # other strides
    assert len(compiled) == 2


def recipe(name: str):
    """The augmentation `augmentation=<name>` trains with (its file in conf/augmentation/)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from cnnbench.settings.config_files import config_dir

    text = (config_dir() / "augmentation" / f"{name}.yaml").read_text()
    return instantiate(OmegaConf.create(text))


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("name", ["none", "flip_crop", "mixup", "cutmix", "mixup_cutmix"])
def test_a_whole_epoch_s_memory_estimate_is_the_size_of_the_tensors_it_makes(name, world_size,
                                                                              monkeypatch):
    asked = []
    monkeypatch.setattr(loader_module, "data_fits_on_device",
                        lambda nbytes, device: asked.append(nbytes) or True)
    split = make_split(n=40)
    loader = DeviceLoader(split, 16, CPU, (0.5,) * 3, (0.5,) * 3, shuffle=True, seed=2,
                          augment=recipe(name), num_classes=10, resize_to=(12, 12),
                          rank=world_size - 1, world_size=world_size)
    assert loader.whole_epoch and asked == [loader.epoch_bytes()]
    epoch = list(loader)  # batches are views of the epoch's tensors: their storages are those
    mine = sum(x.shape[0] for x, _ in epoch)  # the images this process prepares
    x, y = epoch[0]
    gathered = mine * (split.images[0].nbytes + split.labels[0].nbytes)  # images[order], labels
    made = gathered + x.untyped_storage().nbytes()  # + the floats at the model's size
    assert x.untyped_storage().nbytes() == mine * 3 * 12 * 12 * 4
    if loader.soft_classes:  # mixup, CutMix: soft targets, N x classes floats
        assert y.untyped_storage().nbytes() == mine * 10 * 4
        made += y.untyped_storage().nbytes()
    assert bool(loader.soft_classes) == ("mix" in name)
    assert loader.epoch_bytes() == made == asked[0]
