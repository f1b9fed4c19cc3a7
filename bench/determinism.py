"""Two runs with the same seed and trainer.deterministic=true must give identical metrics.

    python bench/determinism.py                    # lenet on MNIST, 2 epochs, on the default device
    python bench/determinism.py model=vgg dataset=synthetic dataset.channels=3 dataset.image_size=32

Prints both runs' test loss/accuracy and whether they are bit-identical; writes JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(extra: list[str]) -> int:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    runs = []
    for k in range(2):
        run_dir = Path("outputs") / "bench" / f"determinism_{stamp}" / f"run{k}"
        cmd = [sys.executable, "-m", "cnnbench", "train", "trainer.deterministic=true",
               "trainer.epochs=2", "augmentation=affine", "trainer.progress=false",
               "evaluation.plots=false", *extra, f"hydra.run.dir={run_dir}"]
        subprocess.run(cmd, check=True, capture_output=True)
        runs.append(json.loads((run_dir / "metrics.json").read_text()))
    keys = ("test/loss", "test/acc", "best_val_acc")
    identical = all(runs[0].get(k) == runs[1].get(k) for k in keys)
    for k, r in enumerate(runs):
        print(f"run {k}: device {r['device']} amp {r['amp']} "
              + " ".join(f"{key}={r.get(key)!r}" for key in keys))
    print(f"identical: {identical}")
    out = HERE / "results" / "determinism.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"created": stamp, "extra": extra, "identical": identical,
                               "runs": [{k: r.get(k) for k in (*keys, "device", "amp", "seed")}
                                        for r in runs]}, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
