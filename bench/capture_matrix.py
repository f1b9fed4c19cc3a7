"""The captured step (trainer.cuda_graph: auto) across models, optimizers, schedulers, AMP modes,
augmentation, early stopping and EMA: is the step captured, and does it train as the plain step
does? Each setting runs twice, with the default (auto) and with trainer.cuda_graph=false, same seed.

    source .gpu/setup.sh && python3 bench/capture_matrix.py --out bench/results/capture_matrix.json

Runs in this process (as bench/speedrun.py: the same config composition and TrainingRun as the
command line). Prints one row per setting: cuda_graph status, test accuracy with and without the
graph, training images/s with and without; writes JSON. On a machine without CUDA every row says
"off: CUDA graphs need a CUDA GPU" (the check is for GPUs).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

BASE = ["trainer.epochs=3", "trainer.progress=false", "evaluation.plots=false",
        "evaluation.shifts=[]"]
SETTINGS = {
    "lenet adam bf16": ["model=lenet", "optimizer=adam"],
    "lenet adam fp16": ["model=lenet", "optimizer=adam", "trainer.amp=fp16"],
    "lenet adam fp32": ["model=lenet", "optimizer=adam", "trainer.amp=off"],
    "mlp sgd onecycle": ["model=mlp", "optimizer=sgd", "scheduler=onecycle"],
    "cnn2 adadelta plateau": ["model=cnn2", "optimizer=adadelta", "scheduler=plateau"],
    "lenet adamw cosine affine": ["model=lenet", "optimizer=adamw", "scheduler=cosine",
                                  "augmentation=affine"],
    "lenet early stopping": ["model=lenet", "trainer.early_stopping.patience=1",
                             "trainer.early_stopping.monitor=val/acc"],
    "lenet ema": ["model=lenet", "trainer.ema_decay=0.99"],
    "vgg cifar-shape flip_crop": ["model=vgg", "dataset=synthetic", "dataset.channels=3",
                                  "dataset.image_size=32", "dataset.train_size=20000",
                                  "dataset.test_size=2000", "augmentation=flip_crop"],
    "resnet18 cifar-shape sgd": ["model=resnet18", "optimizer=sgd", "dataset=synthetic",
                                 "dataset.channels=3", "dataset.image_size=32",
                                 "dataset.train_size=20000", "dataset.test_size=2000"],
    "alexnet_small label smoothing": ["model=alexnet_small", "dataset=synthetic",
                                      "dataset.channels=3", "dataset.image_size=32",
                                      "dataset.train_size=20000", "dataset.test_size=2000",
                                      "trainer.label_smoothing=0.1"],
}


def run(overrides: list[str], root: Path) -> dict:
    from speedrun import run_inprocess

    run_dir = Path(tempfile.mkdtemp(dir=root))
    metrics = run_inprocess([*BASE, *overrides], run_dir)
    return {k: metrics.get(k) for k in ("status", "cuda_graph", "test/acc", "images_per_s",
                                        "train_seconds", "epochs_run", "amp", "device")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench/results/capture_matrix.json")
    parser.add_argument("--only", help="comma-separated setting names")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds 0..N-1 per setting")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SETTINGS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, seed in ((n, s) for n in names for s in range(args.seeds)):
            overrides = [*SETTINGS[name], f"trainer.seed={seed}"]
            graph = run(overrides, Path(tmp))
            plain = run([*overrides, "trainer.cuda_graph=false"], Path(tmp))
            row = {"setting": name, "seed": seed, "overrides": overrides, "graph": graph,
                   "plain": plain}
            rows.append(row)
            print(f"{name:<30} {seed:>2} {str(graph['cuda_graph'])[:40]:<40} acc {graph['test/acc']:.4f} "
                  f"vs {plain['test/acc']:.4f}  img/s {graph['images_per_s']:>10,.0f} vs "
                  f"{plain['images_per_s']:>10,.0f}  ({graph['device']}, {graph['amp']})",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"base": BASE, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
