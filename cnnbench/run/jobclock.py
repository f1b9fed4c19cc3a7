"""When a job started, for its start-up time: the command's own start for the first job of the
process that runs the command, the job's own start for every later job (a sequential sweep) and
for jobs in forked processes (the parallel launcher). Never the shell's start, never the sweep's."""
from __future__ import annotations

import os
import time

from cnnbench import IMPORTED_AT


class JobClock:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.command_start: float | None = IMPORTED_AT  # taken by the first job of this process

    def job_started(self) -> float:
        """A `time.perf_counter()` value: when this job began."""
        start, self.command_start = self.command_start, None
        if start is None or os.getpid() != self.pid:  # a later job, or a forked one
            return time.perf_counter()
        return start
