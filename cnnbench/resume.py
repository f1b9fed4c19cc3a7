"""`trainer.resume=PATH`: find the run a checkpoint belongs to and rebuild its command line."""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import UserError

RESUME_KEY = "trainer.resume"


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def run_dir_of(path: str) -> Path:
    """The run directory of a checkpoint file or run directory `path`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"trainer.resume={path}: no such file or directory. Give the path of a "
                        f"run directory (outputs/runs/...) or of its checkpoints/last.pt.")
    if p.is_dir():
        if not (p / "checkpoints" / "last.pt").is_file():
            raise UserError(f"trainer.resume={path}: {p} has no checkpoints/last.pt, so it is not "
                            f"a cnnbench run directory that can be resumed.")
        return p.resolve()
    run = p.resolve().parent.parent
    if not (run / ".hydra" / "overrides.yaml").is_file():
        raise UserError(f"trainer.resume={path}: the file is not inside a cnnbench run directory "
                        f"(expected <run>/checkpoints/{p.name} with <run>/.hydra/). Point it at "
                        f"the last.pt of a run under outputs/.")
    return run


def resume_arguments(args: list[str]) -> list[str]:
    """Rewrite a `train` command line that has trainer.resume=PATH so that it continues that run:
    the run's own overrides first, then the user's (which win), then the run's directory."""
    value = next((a.split("=", 1)[1] for a in args if override_key(a) == RESUME_KEY), None)
    if not value or value == "null":
        return args
    from .checkpoint import load_checkpoint

    run = run_dir_of(value)
    load_checkpoint(Path(value) if Path(value).is_file() else run / "checkpoints" / "last.pt")
    original = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    mine = {override_key(a) for a in args}
    kept = [o for o in original if override_key(o) not in mine and override_key(o) != RESUME_KEY]
    flags = [a for a in args if a.startswith("-")]
    user = [a for a in args if not a.startswith("-") and override_key(a) != RESUME_KEY]
    return [*flags, *kept, *user, f"{RESUME_KEY}={Path(value).resolve()}",
            f"hydra.run.dir={run}"]


def resume_command(run_dir: Path) -> str:
    """The command that continues the run in `run_dir`, ready to paste into a shell."""
    import shlex

    return f"cnnbench train trainer.resume={shlex.quote(str(run_dir))}"
