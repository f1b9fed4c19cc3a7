"""The Hydra application behind `cnnbench train`."""
from __future__ import annotations

import importlib.util
import logging
import secrets
import traceback
from pathlib import Path
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from .errors import RunDiverged, UserError
from .sinks import write_json_atomic

log = logging.getLogger(__name__)


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
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True, markup=True)


def record_failure(run_dir: Path, status: str, reason: str) -> None:
    """Make sure a failed job's directory says so, even when it failed before training began."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.exists():
        write_json_atomic(metrics_file, {"status": status, "reason": reason})


def make_train_app(outcomes: list[str], debug: bool = False) -> Callable[[], None]:
    """The `@hydra.main` task; each job appends its final status to `outcomes`.

    A job that fails records why in its own metrics.json; in a sweep the other jobs go on.
    """

    @hydra.main(version_base="1.3", config_path=config_root(), config_name="train")
    def train(cfg: DictConfig) -> float | None:
        from .run import TrainingRun  # heavy imports only once Hydra has parsed argv

        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        sweeping = hc.mode == RunMode.MULTIRUN
        console = Console()
        try:
            metrics = TrainingRun(cfg, run_dir, dict(hc.runtime.choices), console).execute()
        except UserError as err:
            if debug:
                traceback.print_exc()
            print_user_error(console, err)
            status = "diverged" if isinstance(err, RunDiverged) else "failed"
            record_failure(run_dir, status, str(err))
            outcomes.append(status)
            return None
        except KeyboardInterrupt:
            outcomes.append("interrupted")
            raise
        except Exception as err:  # a bug or a crash (e.g. out of memory): keep the sweep going
            if not sweeping:
                raise
            log.error("job failed:\n%s", traceback.format_exc())
            print_user_error(console, f"this job failed with {type(err).__name__}: {err} "
                                      f"(the full traceback is in {run_dir / 'train.log'}).")
            record_failure(run_dir, "failed", f"{type(err).__name__}: {err}")
            outcomes.append("failed")
            return None
        outcomes.append(metrics["status"])
        return metrics.get("best_val_acc")

    return train
