"""How fast the GPUs of this machine all-reduce a model's gradients (what DDP does every step).

    torchrun --standalone --nproc-per-node=2 bench/allreduce.py
    torchrun --standalone --nproc-per-node=2 bench/allreduce.py --mb 1 21.4 86 --out bench/results/allreduce.json

For each size (MB of fp32 gradients; 21.4 MB is vgg's 5.35 M parameters) and dtype (fp32, and bf16
as DDP's bf16 compression hook sends it), the median time of --iters NCCL all-reduces after
warm-up, and the bus bandwidth NCCL's own tests report (2 (n-1)/n x bytes / time). Rank 0 prints a
table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", nargs="+", type=float, default=[1.0, 21.4, 86.0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--out", default="bench/results/allreduce.json")
    args = parser.parse_args()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dist.init_process_group("nccl")
    rows = []
    for mb in args.mb:
        for dtype in (torch.float32, torch.bfloat16):
            n = int(mb * 1e6 / 4)  # as many elements as fp32 gradients of `mb` MB
            t = torch.ones(n, device="cuda", dtype=dtype)
            for _ in range(5):
                dist.all_reduce(t)
            torch.cuda.synchronize()
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                dist.all_reduce(t)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            sec = statistics.median(times)
            nbytes = t.numel() * t.element_size()
            rows.append({"fp32_mb": mb, "dtype": str(dtype).removeprefix("torch."),
                         "bytes": nbytes, "ms": 1e3 * sec,
                         "bus_gb_s": 2 * (world - 1) / world * nbytes / sec / 1e9})
    if rank == 0:
        info = {"device": torch.cuda.get_device_name(), "world_size": world,
                "torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version()))}
        print(f"# all-reduce on {world} x {info['device']}, NCCL {info['nccl']}")
        print("| gradients (fp32 MB) | sent as | MB sent | ms | bus GB/s |\n|---:|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['fp32_mb']:g} | {r['dtype']} | {r['bytes'] / 1e6:.1f} | {r['ms']:.3f} | "
                  f"{r['bus_gb_s']:.1f} |")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
