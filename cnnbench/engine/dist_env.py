"""Which process of a torchrun job this is, from the environment torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK, ...): torch-free, so the checks `cnnbench train` makes before anything
starts do not pay torch's import. Joining the group and the collectives: engine.distributed."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes on this machine

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes the run: global rank 0 (one in the whole job)."""
        return self.rank == 0

    @property
    def nodes(self) -> int:
        """Machines in the job (torchrun's GROUP_WORLD_SIZE; else world / local world size)."""
        group = os.environ.get("GROUP_WORLD_SIZE")
        return int(group) if group else max(1, self.world_size // max(1, self.local_world_size))


def from_environment() -> DistInfo:
    """What torchrun put in the environment (a single process when it is absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")),
                    local_world)
