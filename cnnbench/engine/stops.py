"""Stopping every process of a torchrun job at the same step.

A signal (SIGTERM from a scheduler or `kill`, SIGHUP, Ctrl-C) may reach one process of a job, or
one machine's: the process that stops at once leaves the others waiting in a collective for a
peer that is gone. While the job trains, each process holds a stop signal instead, and before
every training step (and at each epoch's end) the processes exchange what they hold: when any
holds one, all of them raise `Stopped` there, at the same step, so rank 0 saves what the run has
and every process ends `interrupted` with the same exit code. A second signal to a process that
holds one stops it at once.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from cnnbench.endings import Stopped, hold_stop_signals
from cnnbench.engine.distributed import DistInfo, collective_device


class AgreedStops:
    """The stop signals of one process of a job, acted on where all processes agree.

    Used as a context manager around the part of the run whose processes work in step; a
    single process (no torchrun) keeps stopping at once, as everywhere else."""

    def __init__(self, info: DistInfo) -> None:
        self.info = info
        self.device = collective_device() if info.enabled and dist.is_initialized() else None
        self.held: int | None = None
        self.restore: Callable[[], None] | None = None

    def __enter__(self) -> AgreedStops:
        if self.device is not None:
            self.restore = hold_stop_signals(self.hold)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.restore is not None:
            self.restore()
            self.restore = None

    def hold(self, signum: int) -> None:
        if self.held is not None:  # asked twice: stop now
            raise Stopped(signum)
        self.held = signum

    def checked(self, loader: Any) -> Any:
        """`loader`, checking for stop signals before each batch under torchrun (as it is in a
        single process, which stops at once)."""
        return loader if self.device is None else StopCheckedLoader(loader, self)

    def check(self) -> None:
        """Every process calls this at the same points: raises Stopped on all of them when
        any holds a stop signal (the reason names the rank that got it)."""
        if self.device is None:
            return
        votes = torch.zeros(self.info.world_size, dtype=torch.int32, device=self.device)
        votes[self.info.rank] = self.held or 0
        dist.all_reduce(votes, op=dist.ReduceOp.SUM)
        asked = votes.nonzero().flatten().tolist()
        if not asked:
            return
        rank = asked[0]
        self.held = None
        raise Stopped(int(votes[rank]), where=f"(received by rank {rank} of "
                                              f"{self.info.world_size}; every process stopped "
                                              f"at the same step)")


class StopCheckedLoader:
    """A training loader whose processes agree on stop signals before every batch they train
    on and at the end of each epoch; everything else is the loader's own."""

    def __init__(self, loader: Any, stops: AgreedStops) -> None:
        self.loader = loader
        self.stops = stops

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            self.stops.check()
            yield batch
        self.stops.check()

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
