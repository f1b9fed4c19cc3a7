"""Where a training step's GPU time goes: a kernel table by category, and images/s per variant.

    python bench/profile_step.py model=vgg dataset=synthetic dataset.channels=3 dataset.image_size=32
    python bench/profile_step.py --batch-size 512 experiment=fashion_speedrun

The model, dataset and augmentation come from the config (any `cnnbench train` overrides). Each
variant trains on the data held on the device with the same code `cnnbench train` runs:
  eager           no compile, no CUDA graph
  graph           the step captured as a CUDA graph (trainer.cuda_graph)
  compile+graph   torch.compile (default mode) + the captured step (the speed-run presets)
  autotune+graph  torch.compile max-autotune-no-cudagraphs + the captured step
  overhead        torch.compile reduce-overhead (its own CUDA graphs; the mode that also works
                  under DDP, where the step is not captured whole)
images/s is the mean over --epochs timed epochs after one warm-up epoch. The profile (torch.profiler,
--profile VARIANT, compiled variants run without the graph there so that every kernel is seen)
groups the kernels of --profile-steps steps into convolution, matmul, fused (Triton), BatchNorm,
optimizer, communication, copy and other, lists the largest, and sets the GPU's busy time per
step beside the step's wall time (much less busy than wall: the host, or waiting, is the limit).

Under torchrun it profiles the data-parallel (DDP) step as `cnnbench train` runs it: each process
takes its share of every batch, trainer.sync_batchnorm and trainer.ddp_comm_hook apply, no warm-up
and no captured graph (the first, untimed epoch compiles); images/s are global, rank 0 reports:

    torchrun --standalone --nproc-per-node=2 bench/profile_step.py --variants eager compile \
        --profile eager model=vgg dataset=synthetic dataset.channels=3 dataset.image_size=32
Prints tables, writes JSON (--out).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

CATEGORIES = [  # first match wins (kernel names, lower case)
    ("communication", ("nccl", "allreduce", "all_reduce", "broadcast", "allgather")),
    ("optimizer", ("adam", "sgd", "multi_tensor", "fused_sgd", "foreach")),
    ("BatchNorm", ("batch_norm", "bn_fw", "bn_bw", "welford", "batchnorm")),
    ("fused (Triton)", ("triton",)),
    ("convolution", ("conv", "implicit", "xmma", "dgrad", "wgrad", "fprop", "cudnn")),
    ("matmul", ("gemm", "cutlass", "sm90", "sm80", "cublas", "nvjet")),
    ("copy / layout", ("copy", "nchw", "nhwc", "transpose", "memcpy", "cat")),
    ("reduction", ("reduce",)),
]


def category(name: str) -> str:
    low = name.lower()
    for label, keys in CATEGORIES:
        if any(k in low for k in keys):
            return label
    return "elementwise / other"


def build(overrides: list[str], batch_size: int | None):
    from omegaconf import OmegaConf

    from cnnbench.data import DeviceLoader
    from cnnbench.data.sources import load_dataset
    from cnnbench.engine.safe_build import build_allowed
    from cnnbench.run.build import build_model, build_optimizer
    from cnnbench.settings.config_files import compose_config

    cfg = compose_config(overrides)
    data = load_dataset(**OmegaConf.to_container(cfg.dataset, resolve=True))
    bs = batch_size or int(cfg.trainer.batch_size)
    augment = build_allowed(cfg.augmentation, "augmentation")

    def make(device: torch.device, channels_last: bool, dist):
        from cnnbench.engine.distributed import sync_batchnorm

        torch.manual_seed(0)
        model = build_model(cfg, data).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.trainer.get("sync_batchnorm"):
            model, _ = sync_batchnorm(model, dist, device)
        loader = DeviceLoader(data.train, bs, device, data.mean, data.std, shuffle=True, seed=0,
                              augment=augment if augment.active else None,
                              channels_last=channels_last, rank=dist.rank,
                              world_size=dist.world_size, resize_to=data.resize_to)
        return model, loader, lambda m: build_optimizer(cfg, m)

    label_smoothing = float(cfg.trainer.label_smoothing)
    return make, bs, label_smoothing, cfg


def setup(name: str, make, base, label_smoothing: float, dist, comm_hook=None):
    """Runtime, fresh model (compiled as `name` says; in DDP under torchrun), loader, optimizer
    and loss of a variant."""
    from cnnbench.engine.distributed import wrap_model
    from cnnbench.engine.runtime import Runtime

    tokens = name.split("+")
    mode = {"compile": "default", "autotune": "max-autotune-no-cudagraphs",
            "overhead": "reduce-overhead"}.get(tokens[0])
    graph = "graph" in tokens and base.device.type == "cuda" and not dist.enabled
    runtime = Runtime(base.device, base.amp_dtype, base.channels_last, mode, graph)
    torch._dynamo.reset()
    model, loader, optimizer_for = make(base.device, base.channels_last, dist)
    if mode:
        model.compile(mode=mode, dynamic=False)
    model = wrap_model(model, dist, base.device, comm_hook)
    return runtime, model, loader, optimizer_for(model), nn.CrossEntropyLoss(
        label_smoothing=label_smoothing)


def run_variant(name: str, make, base, label_smoothing: float, epochs: int, dist,
                comm_hook=None) -> dict:
    from cnnbench.engine.distributed import all_reduce_sum
    from cnnbench.engine.graphs import StepGraphs
    from cnnbench.engine.loop import train_one_epoch
    from cnnbench.engine.schedule import LRSchedule
    from cnnbench.engine.warmup import warm_up

    runtime, model, loader, optimizer, loss_fn = setup(name, make, base, label_smoothing, dist,
                                                       comm_hook)
    mode, graph = runtime.compile_mode, runtime.capture_step
    t0 = time.perf_counter()
    warm = (mode or graph) and not dist.enabled  # (as `cnnbench train`: no warm-up under DDP)
    graphs = StepGraphs(runtime, loss_fn, None if graph and not dist.enabled else "not asked for")
    warmup = warm_up(model, loss_fn, runtime, loader, [], graphs=graphs) if warm else 0.0
    rates = []
    for epoch in range(epochs + 1):
        r = train_one_epoch(model, loader, optimizer, loss_fn, runtime, None, LRSchedule(None),
                            reduce=all_reduce_sum, graphs=graphs)  # images: all processes'
        if epoch:
            rates.append(r["images"] / r["seconds"])
    return {"variant": name, "images_per_s": sum(rates) / len(rates), "min": min(rates),
            "max": max(rates), "warmup_seconds": warmup, "cuda_graph": graphs.status,
            "wall_seconds": time.perf_counter() - t0, "step_ms": 1e3 * loader.batch_size * len(rates)
            / sum(rates)}


def profile(name: str, make, base, label_smoothing: float, steps: int, dist,
            comm_hook=None) -> dict:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    name = name.replace("+graph", "")  # every kernel launched on its own, so each is seen
    runtime, model, loader, optimizer, loss_fn = setup(name, make, base, label_smoothing, dist,
                                                       comm_hook)

    def batches_forever():
        while True:
            yield from loader

    batches = batches_forever()

    def step() -> None:
        x, y = next(batches)
        with runtime.autocast():
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()  # the same steps unprofiled: wall time per step
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    wall_ms = 1e3 * (time.perf_counter() - start) / steps
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    kernels: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for evt in prof.events():
        if evt.device_type == torch.autograd.DeviceType.CUDA:
            k = kernels[evt.name]
            k[0] += evt.device_time_total if hasattr(evt, "device_time_total") else evt.cuda_time_total
            k[1] += 1
    total = sum(v[0] for v in kernels.values()) or 1.0
    by_cat: dict[str, float] = defaultdict(float)
    for kname, (us, _n) in kernels.items():
        by_cat[category(kname)] += us
    top = sorted(kernels.items(), key=lambda kv: -kv[1][0])[:25]
    return {"variant": name, "steps": steps, "gpu_ms_per_step": total / steps / 1e3,
            "wall_ms_per_step": wall_ms,
            "by_category": {k: {"ms_per_step": v / steps / 1e3, "share": v / total}
                            for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
            "top_kernels": [{"name": k[:140], "ms_per_step": us / steps / 1e3, "calls_per_step": n / steps,
                             "share": us / total} for k, (us, n) in top]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--variants", nargs="+", default=["eager", "graph", "compile+graph",
                                                          "autotune+graph"])
    parser.add_argument("--profile", nargs="*", default=["compile"],
                        help="variants to profile (eager, compile, autotune)")
    parser.add_argument("--profile-steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=None)
    args, overrides = parser.parse_known_args()

    import dataclasses

    from cnnbench.engine import distributed
    from cnnbench.engine.runtime import make_runtime

    dist = distributed.from_environment()
    distributed.init_process_group(dist)
    base = make_runtime("auto", "auto", "auto")
    base = dataclasses.replace(base, device=distributed.device_for(dist, base.device))
    torch.backends.cudnn.benchmark = base.device.type == "cuda"
    make, bs, label_smoothing, cfg = build(overrides, args.batch_size)
    comm_hook = cfg.trainer.get("ddp_comm_hook")
    say = print if dist.is_main else (lambda *a, **k: None)
    say(f"# {base.device_name} | torch {torch.__version__} | AMP {base.amp_name} | batch {bs} | "
        f"{dist.world_size} process(es) | {' '.join(overrides)}", flush=True)
    rows = []
    for v in args.variants:
        r = run_variant(v, make, base, label_smoothing, args.epochs, dist, comm_hook)
        rows.append(r)
        say(f"  {v:18} {r['images_per_s']:>10,.0f} img/s  ({r['step_ms']:.2f} ms/step, "
              f"min {r['min']:,.0f}, max {r['max']:,.0f}; warm-up {r['warmup_seconds']:.1f} s; "
              f"graph {r['cuda_graph'][:40]})", flush=True)
    profiles = []
    if base.device.type == "cuda":
        for v in args.profile:
            p = profile(v, make, base, label_smoothing, args.profile_steps, dist, comm_hook)
            profiles.append(p)
            say(f"\n## profile: {v}, {p['gpu_ms_per_step']:.3f} GPU ms per step (kernels only) "
                f"of a {p['wall_ms_per_step']:.3f} ms step: GPU busy "
                f"{100 * p['gpu_ms_per_step'] / p['wall_ms_per_step']:.0f}% of the time")
            say("| category | ms/step | share |\n|---|---:|---:|")
            for k, c in p["by_category"].items():
                say(f"| {k} | {c['ms_per_step']:.3f} | {100 * c['share']:.1f}% |")
            say("\n| kernel | ms/step | calls/step | share |\n|---|---:|---:|---:|")
            for k in p["top_kernels"]:
                say(f"| {k['name'][:100]} | {k['ms_per_step']:.3f} | {k['calls_per_step']:.0f} | "
                    f"{100 * k['share']:.1f}% |")
    distributed.destroy()
    if not dist.is_main:
        return
    out = Path(args.out or REPO / "bench" / "results" / "profile_step.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": base.device_name, "torch": torch.__version__,
                               "batch_size": bs, "world_size": dist.world_size,
                               "overrides": overrides, "command": " ".join(sys.argv),
                               "rows": rows, "profiles": profiles}, indent=2))
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
