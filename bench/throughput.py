"""Training throughput (images/s and TFLOP/s): the seeds' loop, a tuned DataLoader, cnnbench's path.

    python bench/throughput.py                       # everything, on the best device
    python bench/throughput.py --models lenet --batch-sizes 512 --quick

Rows, for lenet on MNIST-shaped data (1x28x28; the real MNIST when it is on disk) and the VGG-style
net of seed 003 on CIFAR-shaped data (3x32x32, random uint8: CIFAR is not on these machines):
  seed-style   torchvision-style dataset (uint8 -> PIL -> ToTensor -> Normalize per sample),
               DataLoader(shuffle, 2 workers), fp32, loss.item() every step: the seeds' loop
  tuned-dl     the same dataset, DataLoader with 8 workers, pinned memory, persistent workers,
               non_blocking copies, bf16 autocast, channels_last, fused Adam
  cnnbench     cnnbench's own path: DeviceLoader (uint8 on the device) + train_one_epoch, bf16,
               channels_last, fused Adam; with and without on-device augmentation (affine for
               lenet, keras_like for vgg); +graph: the step captured as a CUDA graph
               (trainer.cuda_graph); +compile: torch.compile (mode default with +graph, else
               --compile-mode, reduce-overhead)
Each cnnbench figure is the mean over timed epochs after a warm-up epoch (and, compiled, after the
compile warm-up); the DataLoader rows time a fixed number of steps after warm-up steps.
FLOPs per image (forward + backward) come from torch.utils.flop_counter.FlopCounterMode.
Prints a table and writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnbench.data import DeviceLoader, Split
from cnnbench.engine.augment import BatchAugment
from cnnbench.engine.graphs import StepGraphs
from cnnbench.engine.loop import train_one_epoch
from cnnbench.engine.runtime import Runtime, fused_options, make_runtime
from cnnbench.engine.schedule import LRSchedule
from cnnbench.engine.warmup import warm_up
from cnnbench.models.lenet import LeNet5

AUGMENT = {  # the seeds' own pipelines (conf/augmentation/affine.yaml, keras_like.yaml)
    "lenet": ("affine", dict(rotation=10.0, translate=0.143, scale=0.1, shear=0.1)),
    "vgg": ("keras_like", dict(flip=True, rotation=15.0, translate=0.1, scale=0.2)),
}


class SeedVGG(nn.Module):
    """Seed 003's Keras net in PyTorch: three double-conv blocks 64/128/256 (conv-ReLU-BN),
    dropout, FC 1024, on 3x32x32. About 0.94 GFLOP per image for forward + backward. Used only
    where the model zoo's `vgg` (cnnbench.models.vgg.VGG, the same net) is missing."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(c_out)]

        self.features = nn.Sequential(
            *conv(3, 64), nn.Dropout(0.2), *conv(64, 64), nn.Dropout(0.2), nn.MaxPool2d(2),
            *conv(64, 128), *conv(128, 128), nn.Dropout(0.3), nn.MaxPool2d(2),
            *conv(128, 256), *conv(256, 256), nn.Dropout(0.3), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(256 * 4 * 4, 1024),
                                        nn.ReLU(inplace=True), nn.Linear(1024, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def make_model(name: str) -> nn.Module:
    if name == "lenet":
        return LeNet5(1, 28, 10)
    try:  # the zoo's seed-003 VGG (conf/model/vgg.yaml) where this checkout has it
        from cnnbench.models.vgg import VGG

        return VGG(3, 32, 10)
    except ImportError:
        return SeedVGG(10)


# -- data ------------------------------------------------------------------------------------------

def load_data(name: str) -> tuple[Split, tuple, tuple, str]:
    """(train split as uint8 N x C x H x W, mean, std, description)."""
    if name == "lenet":
        from cnnbench.data.sources import load_mnist

        data = load_mnist(os.environ.get("CNNBENCH_DATA"), download=False)
        return data.train, data.mean, data.std, "MNIST train (60,000 x 1x28x28)"
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (50_000,), generator=g)
    return (Split(images, labels), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
            "CIFAR-shaped random uint8 (50,000 x 3x32x32)")


class TorchvisionStyle(torch.utils.data.Dataset):
    """Per-sample work exactly as torchvision.datasets.MNIST / CIFAR10 do it: a uint8 array row
    becomes a PIL image, then the transform (ToTensor, Normalize) runs on it."""

    def __init__(self, split: Split, mean, std) -> None:
        from torchvision import transforms

        images = split.images.numpy()
        self.gray = images.shape[1] == 1
        self.data = images[:, 0] if self.gray else images.transpose(0, 2, 3, 1).copy()  # HWC
        self.targets = split.labels.tolist()
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.data[i], mode="L") if self.gray else Image.fromarray(self.data[i])
        return self.transform(img), int(self.targets[i])


# -- the loops ---------------------------------------------------------------------------------------

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def dataloader_loop(model_name: str, split: Split, mean, std, batch_size: int, device: torch.device,
                    tuned: bool, warmup_steps: int, steps: int) -> dict:
    """The seed-style loop (tuned=False) or the tuned DataLoader loop; images/s over `steps`."""
    torch.manual_seed(0)
    model = make_model(model_name).to(device)
    dataset = TorchvisionStyle(split, mean, std)
    if tuned:
        workers = min(8, os.cpu_count() or 1)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             num_workers=workers, pin_memory=device.type == "cuda",
                                             persistent_workers=True, prefetch_factor=4,
                                             drop_last=True)
        model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3,
                                     **fused_options(torch.optim.Adam, device))
        amp = torch.bfloat16 if device.type == "cuda" else None
    else:  # as the seeds write it
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                             num_workers=2, drop_last=True)
        optimizer = (torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
                     if model_name == "lenet" else torch.optim.Adam(model.parameters(), lr=1e-4))
        amp = None
    criterion = nn.CrossEntropyLoss()
    model.train()
    done, images, start = 0, 0, None
    running_loss = 0.0
    while done < warmup_steps + steps:
        for inputs, labels in loader:
            if done == warmup_steps:
                sync(device)
                start, images = time.perf_counter(), 0
            if tuned:
                inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                labels = labels.to(device, non_blocking=True)
            else:
                inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=tuned)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                outputs = model(inputs)
                loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            if not tuned:
                running_loss += loss.item()  # the seeds' per-step sync
            images += labels.shape[0]
            done += 1
            if done >= warmup_steps + steps:
                break
    sync(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": images / seconds, "seconds": seconds, "images": images}


def cnnbench_loop(model: nn.Module, split: Split, mean, std, batch_size: int, runtime: Runtime,
                  augment: BatchAugment | None, epochs: int) -> dict:
    """cnnbench's path: DeviceLoader + train_one_epoch (the code `cnnbench train` runs)."""
    loader = DeviceLoader(split, batch_size, runtime.device, mean, std, shuffle=True, seed=0,
                          augment=augment, channels_last=runtime.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3,
                                 **fused_options(torch.optim.Adam, runtime.device))
    loss_fn = nn.CrossEntropyLoss()
    compile_s = 0.0
    graphs = StepGraphs(runtime, loss_fn, None if runtime.capture_step else "not asked for")
    if runtime.compile_mode or runtime.capture_step:
        compile_s = warm_up(model, loss_fn, runtime, loader, [], graphs=graphs)
    rates = []
    for epoch in range(epochs + 1):  # the first epoch warms up (cuDNN autotuning, allocator)
        result = train_one_epoch(model, loader, optimizer, loss_fn, runtime, None, LRSchedule(None),
                                 graphs=graphs)
        if epoch:
            rates.append(result["images"] / result["seconds"])
    return {"images_per_s": float(np.mean(rates)), "min": float(np.min(rates)),
            "max": float(np.max(rates)), "epochs": epochs, "warmup_seconds": compile_s,
            "cuda_graph": graphs.status}


def flops_per_image(model_name: str, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(model_name).to(device)
    shape = (1, 28, 28) if model_name == "lenet" else (3, 32, 32)
    x = torch.randn(8, *shape, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() / 8


# -- main --------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet", "vgg"], choices=["lenet", "vgg"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 512])
    parser.add_argument("--variants", nargs="+",
                        default=["seed-style", "tuned-dl", "cnnbench", "cnnbench+aug",
                                 "cnnbench+graph", "cnnbench+aug+graph",
                                 "cnnbench+compile+graph", "cnnbench+aug+compile+graph"])
    parser.add_argument("--compile-mode", default="reduce-overhead")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs of the cnnbench rows")
    parser.add_argument("--steps", type=int, default=300, help="timed steps of DataLoader rows")
    parser.add_argument("--quick", action="store_true", help="fewer steps and epochs (a smoke test)")
    parser.add_argument("--train-size", type=int, default=None, help="use only this many images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench/results/throughput.json")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.epochs = 20, 1

    base = make_runtime(args.device, "auto", "auto")
    device = base.device
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as `cnnbench train` does on CUDA
    info = {"device": base.device_name, "torch": torch.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "amp": base.amp_name, "channels_last": base.channels_last,
            "compile_mode": args.compile_mode, "command": " ".join(sys.argv)}
    print(f"# {info['device']} | torch {info['torch']} | AMP {info['amp']} | {info['cpus']} CPUs")
    rows = []
    for model_name in args.models:
        split, mean, std, what = load_data(model_name)
        if args.train_size:
            split = Split(split.images[:args.train_size], split.labels[:args.train_size])
            what += f", first {args.train_size}"
        flops = flops_per_image(model_name, device)
        print(f"# {model_name}: {what}; {flops / 1e9:.4f} GFLOP per image (forward + backward)")
        aug_name, aug_kwargs = AUGMENT[model_name]
        compiled: dict[str, nn.Module] = {}  # one compiled model per net and mode, reused
        for bs in args.batch_sizes:
            for variant in args.variants:
                t0 = time.perf_counter()
                if variant in ("seed-style", "tuned-dl"):
                    steps = max(1, min(args.steps, len(split) // bs - 5))
                    benchmark = torch.backends.cudnn.benchmark  # the seeds leave it off
                    torch.backends.cudnn.benchmark = variant == "tuned-dl"
                    r = dataloader_loop(model_name, split, mean, std, bs, device,
                                        variant == "tuned-dl", warmup_steps=5, steps=steps)
                    torch.backends.cudnn.benchmark = benchmark
                else:
                    tokens = variant.split("+")
                    graph = "graph" in tokens and device.type == "cuda"
                    mode = ("default" if graph else args.compile_mode) if "compile" in tokens else None
                    augment = BatchAugment(**aug_kwargs) if "aug" in tokens else None
                    runtime = Runtime(device, base.amp_dtype, base.channels_last, mode, graph)
                    torch.manual_seed(0)
                    if mode:
                        if mode not in compiled:
                            net = make_model(model_name).to(device)
                            if base.channels_last:
                                net = net.to(memory_format=torch.channels_last)
                            net.compile(mode=mode, dynamic=False)
                            compiled[mode] = net
                        model = compiled[mode]
                    else:
                        model = make_model(model_name).to(device)
                        if base.channels_last:
                            model = model.to(memory_format=torch.channels_last)
                    r = cnnbench_loop(model, split, mean, std, bs, runtime, augment, args.epochs)
                row = {"model": model_name, "batch_size": bs, "variant": variant,
                       "augmentation": aug_name if "aug" in variant else "none",
                       "tflops": r["images_per_s"] * flops / 1e12, "gflop_per_image": flops / 1e9,
                       "wall_seconds": time.perf_counter() - t0, **r}
                rows.append(row)
                note = f" [cuda graph {r['cuda_graph']}]" if "graph" in variant else ""
                print(f"  {model_name:5} bs {bs:4} {variant:26} {row['images_per_s']:>11,.0f} img/s "
                      f"{row['tflops']:7.2f} TFLOP/s  ({row['wall_seconds']:.1f} s){note}", flush=True)
    # ratios to the seed-style loop as the seeds run it (bs 64), and at the same batch size
    for row in rows:
        for key, bs in (("x_seed_bs64", 64), ("x_seed_same_bs", row["batch_size"])):
            ref = [r for r in rows if r["model"] == row["model"] and r["variant"] == "seed-style"
                   and r["batch_size"] == bs]
            row[key] = row["images_per_s"] / ref[0]["images_per_s"] if ref else None
    print()
    print("| model | batch | loop | augmentation | images/s | TFLOP/s | x seed-style (bs 64) |")
    print("|---|---:|---|---|---:|---:|---:|")
    for row in rows:
        ratio = f"{row['x_seed_bs64']:.1f}" if row["x_seed_bs64"] else "-"
        print(f"| {row['model']} | {row['batch_size']} | {row['variant']} | {row['augmentation']} | "
              f"{row['images_per_s']:,.0f} | {row['tflops']:.2f} | {ratio} |")
    for model_name in args.models:
        for bs in args.batch_sizes:
            pick = {r["variant"]: r["images_per_s"] for r in rows
                    if r["model"] == model_name and r["batch_size"] == bs}
            for plain, aug in (("cnnbench", "cnnbench+aug"), ("cnnbench+compile", "cnnbench+aug+compile"),
                               ("cnnbench+graph", "cnnbench+aug+graph"),
                               ("cnnbench+compile+graph", "cnnbench+aug+compile+graph")):
                if plain in pick and aug in pick:
                    cost = 1 - pick[aug] / pick[plain]
                    print(f"augmentation cost, {model_name} bs {bs}, {plain}: {100 * cost:.1f}%")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
