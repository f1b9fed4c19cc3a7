"""`cnnbench train` under torchrun: one process decides, every process follows.

Rank 0 (the global rank) makes every check before Hydra starts and picks the run directory; the
others take its command line, or exit with its exit code (quietly: rank 0 says why), so a
mistake is one paragraph however many machines run the job and no process waits for a peer
that already gave up. A resume is checked on every process too: each one reads the run's
last.pt itself, so each machine must see it at the path rank 0 gives."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Callable

Checked = tuple[list[str], "Path | None"]
QUIET_RANKS = ["hydra.output_subdir=null", "hydra/job_logging=disabled",
               "hydra/hydra_logging=disabled"]  # only rank 0 writes Hydra's files and log


def decided_by_rank0(args: list[str], check: Callable[[list[str]], Checked]) -> Checked:
    """`check(args)` in a single process; under torchrun, rank 0's result on every process."""
    from cnnbench.engine.dist_env import from_environment

    info = from_environment()
    if not info.enabled:  # one process: torch is not imported for the checks
        return check(args)
    from cnnbench.engine import distributed

    distributed.init_process_group(info)
    verdict: tuple = ("exit", 1)
    failure: BaseException | None = None
    if info.is_main:
        try:
            verdict = ("ok", check(args))
        except BaseException as err:  # noqa: BLE001 (said by rank 0, followed by the others)
            failure, verdict = err, ("exit", exit_code_of(err))
    verdict = distributed.broadcast_object(verdict, info)
    if failure is not None:
        raise failure
    if verdict[0] == "exit":
        raise SystemExit(verdict[1])
    (checked, sweep_dir) = verdict[1]
    require_readable_resume(checked, info)
    return (checked if info.is_main else [*checked, *QUIET_RANKS]), sweep_dir


def exit_code_of(err: BaseException) -> int:
    """The exit code the processes other than rank 0 end with when rank 0's checks end it."""
    from cnnbench.endings import ending_of
    from cnnbench.run.resume import NothingToResume

    return 0 if isinstance(err, NothingToResume) else ending_of(err).exit_code


def require_readable_resume(args: list[str], info) -> None:
    """Every process of the job reads the checkpoint a resume continues from: when one cannot
    (its machine does not share rank 0's storage), every process stops before training and
    rank 0 says which machine lacks it."""
    from cnnbench.engine import distributed
    from cnnbench.errors import UserError
    from cnnbench.run.resume import resume_value

    path = resume_value(args)
    if path is None:
        return
    mine = None if Path(path).is_file() else f"rank {info.rank} on {socket.gethostname()}"
    missing = [m for m in distributed.all_gather_objects(mine, info) if m is not None]
    if not missing:
        return
    if not info.is_main:
        raise SystemExit(2)
    raise UserError(f"trainer.resume: {', '.join(missing)} cannot read {path}, and every "
                    f"process of a torchrun job reads the checkpoint it continues from. Put the "
                    f"run directory on storage every machine shares, or copy it to the same path "
                    f"on each machine, then start the job again.")
