"""Ensembles of independently trained runs: does averaging the test probabilities of k seeds of a
preset beat one run, and at what training time?

    python bench/ensemble.py fashion_minute --seeds 4 --set trainer.batch_size=256 \
        optimizer.lr=0.1 trainer.epochs=40 --probs /tmp/ens/e40
    python bench/ensemble.py fashion_minute --analyse /tmp/ens/e40

Each seed is trained as `bench/speedrun.py` trains it (`cnnbench train experiment=<name>
trainer.seed=<seed> <overrides>` in this process, with its last checkpoint kept), then its model
is loaded from that checkpoint as `cnnbench eval` loads it and its softmax probabilities on the
test set are saved as `<probs>/<seed>.npy` (float32, one row per test image). --analyse reads
such a folder and prints, for every k, the test accuracy of every k-seed ensemble (the argmax of
the summed probabilities): mean, min and max over the combinations. Writes JSON (--out).
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def test_split(overrides: list[str]):
    from omegaconf import OmegaConf

    from cnnbench.data import load_dataset
    from cnnbench.settings.config_files import compose_config

    cfg = compose_config(overrides)
    data = load_dataset(**OmegaConf.to_container(cfg.dataset, resolve=True))
    if data.resize_to is not None:
        raise SystemExit("a preset that resizes its images on the device is not handled here")
    return data.test.images.numpy(), data.test.labels.numpy().astype(np.int64)


def train_seeds(experiment: str, seeds: int, extra: list[str], probs: Path) -> list[dict]:
    import torch
    from speedrun import epoch_seconds, run_inprocess

    from cnnbench.run.trained import load_trained

    probs.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(seeds):
        overrides = [f"experiment={experiment}", f"trainer.seed={seed}", *extra]
        images, labels = test_split(overrides)
        run_dir = probs / f"run_{seed}"
        metrics = run_inprocess([*overrides, "trainer.checkpoint.save_last=true"], run_dir)
        trained = load_trained(run_dir, "auto")
        x = torch.from_numpy(trained.prep.normalize(images)).to(trained.device)
        with torch.no_grad():
            p = torch.cat([torch.softmax(trained.model(x[i:i + 2000]).float(), 1)
                           for i in range(0, len(x), 2000)]).cpu().numpy()
        np.save(probs / f"{seed}.npy", p.astype(np.float32))
        np.save(probs / "labels.npy", labels)
        seconds = epoch_seconds(run_dir)
        rows.append({"seed": seed, "test_acc": metrics["test/acc"],
                     "test_acc_of_probabilities": float((p.argmax(1) == labels).mean()),
                     "train_seconds": metrics["train_seconds"], "device": metrics.get("device"),
                     "fastest_epoch_x_epochs": min(seconds) * len(seconds) if seconds else None})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def ensembles(probs: Path) -> list[dict]:
    """For k = 1..n: the accuracy of every k-seed ensemble of the folder's probabilities."""
    labels = np.load(probs / "labels.npy")
    members = {int(f.stem): np.load(f) for f in sorted(probs.glob("*.npy")) if f.stem.isdigit()}
    table = []
    for k in range(1, len(members) + 1):
        accs = [float((sum(members[s] for s in combo).argmax(1) == labels).mean())
                for combo in itertools.combinations(sorted(members), k)]
        table.append({"members": k, "combinations": len(accs), "mean": statistics.fmean(accs),
                      "min": min(accs), "max": max(accs)})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", help="a preset of conf/experiment/, e.g. fashion_minute")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--probs", type=Path, help="where the probabilities are written")
    parser.add_argument("--analyse", type=Path, help="only read the probabilities of a folder")
    parser.add_argument("--out", type=Path, help="JSON path (default: <probs>/ensemble.json)")
    args = parser.parse_args()
    folder = args.analyse or args.probs
    if folder is None:
        parser.error("name --probs (train and analyse) or --analyse (analyse only)")
    runs = [] if args.analyse else train_seeds(args.experiment, args.seeds, args.set, folder)
    table = ensembles(folder)
    print(f"\nexperiment={args.experiment} {' '.join(args.set)}")
    print("| members | ensembles | test acc mean | min | max |")
    print("|---:|---:|---:|---:|---:|")
    for row in table:
        print(f"| {row['members']} | {row['combinations']} | {100 * row['mean']:.2f}% | "
              f"{100 * row['min']:.2f}% | {100 * row['max']:.2f}% |")
    out = args.out or folder / "ensemble.json"
    out.write_text(json.dumps({"experiment": args.experiment, "overrides": args.set,
                               "command": " ".join(sys.argv), "runs": runs,
                               "ensembles": table}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
