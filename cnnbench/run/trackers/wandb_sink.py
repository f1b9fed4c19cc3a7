"""A run in Weights & Biases: its options as the config, the epochs' metrics (step = epoch),
the test metrics and the final status in the summary, the pictures as images and files. A
sweep's jobs form one group named after the sweep folder."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from cnnbench.rundir import COMPLETED


def _require_login() -> None:
    """Online mode needs an API key: without one W&B would stop the run to ask for it."""
    if os.environ.get("WANDB_API_KEY"):
        return
    try:
        from wandb.sdk.lib.wbauth.wbnetrc import read_netrc_auth
    except ImportError:  # another W&B version: it asks, or fails, itself
        return
    if not read_netrc_auth(host=os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")):
        raise RuntimeError("not logged in: run `wandb login` or set WANDB_API_KEY, or log "
                           "offline with logger.wandb.mode=offline")


class WandbSink:
    name = "W&B"

    def __init__(self, options: Mapping[str, Any], params: Mapping[str, Any],
                 tags: Mapping[str, str], run_dir: Path, sweep: Path | None) -> None:
        import wandb

        mode = os.environ.get("WANDB_MODE") or options.get("mode") or "online"
        if mode == "online":
            _require_login()
        folder = Path(options.get("dir") or run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=options.get("project") or "cnnbench", entity=options.get("entity"),
            mode=mode, dir=str(folder), name=run_dir.name,
            group=sweep.name if sweep is not None else None, config=dict(params),
            reinit="create_new",  # a sweep's jobs run one after another in one process
            settings=wandb.Settings(console="off", silent=True))
        self.run.summary.update(dict(tags))

    def epoch(self, row: Mapping[str, Any]) -> None:
        self.run.log({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def finish(self, metrics: Mapping[str, Any], status: str, files: Sequence[Path]) -> None:
        """The test metrics, the files, the status; then the run ends in W&B."""
        import wandb

        try:
            self.run.summary.update({k: v for k, v in metrics.items()
                                     if k.startswith(("test/", "shift/"))})
            images = {p.stem: wandb.Image(str(p)) for p in files if p.suffix == ".png"}
            if images:  # beside the last epoch's metrics
                self.run.log(images)
            for path in files:  # the run's files folder is uploaded as it ends
                shutil.copy2(path, Path(self.run.dir) / path.name)
        finally:
            self.run.summary["status"] = status
            self.run.finish(exit_code=0 if status == COMPLETED else 1)
