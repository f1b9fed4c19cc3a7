"""The Hydra application behind `cnnbench train`."""
from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from .errors import UserError
from .sinks import write_json_atomic



def config_root() -> str:
    """Hydra's config path: the packaged `cnnbench.conf` when installed, else the checkout's conf/
    (running from a source tree with only PYTHONPATH set, as on a machine without an install)."""
    if importlib.util.find_spec("cnnbench.conf") is not None:
        return "pkg://cnnbench.conf"
    return str(Path(__file__).resolve().parent.parent / "conf")


# A short random tag in run directory names: two runs started in the same second never collide.
# Cached, so a sweep's directory is resolved once for all its jobs.
if not OmegaConf.has_resolver("cnnbench.run_id"):
    OmegaConf.register_new_resolver("cnnbench.run_id", lambda: secrets.token_hex(3),
                                    use_cache=True)


def print_user_error(console: Console, err: BaseException) -> None:
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)


def make_train_app(outcomes: list[str]) -> Callable[[], None]:
    """The `@hydra.main` task; each job appends 'completed', 'failed' or 'interrupted'."""

    @hydra.main(version_base="1.3", config_path=config_root(), config_name="train")
    def train(cfg: DictConfig) -> float | None:
        from .run import TrainingRun  # heavy imports only once Hydra has parsed argv

        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        console = Console()
        try:
            metrics = TrainingRun(cfg, run_dir, dict(hc.runtime.choices), console).execute()
        except UserError as err:
            print_user_error(console, err)
            metrics_file = run_dir / "metrics.json"
            if not metrics_file.exists():
                write_json_atomic(metrics_file, {"status": "failed", "reason": str(err)})
            outcomes.append("failed")
            return None
        except KeyboardInterrupt:
            outcomes.append("interrupted")
            raise
        outcomes.append(metrics["status"])
        return metrics.get("best_val_acc")

    return train
