"""The run directory contract: its file names, the status values, metrics.json and the lock.

Every module that reads or writes a run's files takes the names from here; `RunRecord` is the
one writer of a run's metrics.json, so a run's status has one owner.

    <run>/.hydra/          config.yaml, overrides.yaml, hydra.yaml (written by Hydra)
    <run>/metrics.json     status, reason, phase and every metric (RunRecord)
    <run>/history.csv      one row per epoch
    <run>/events.out.*     TensorBoard events, in the run directory itself: TensorBoard names
                           each run by its directory (older runs have them in <run>/tb/)
    <run>/checkpoints/     best.pt, last.pt
    <run>/.cnnbench.lock   the process that owns the run (host, pid, start time), while it runs
    <run>/config_hash      the hash of the run's resolved config: a sweep job's identity
    <run>/.earlier/<n>/    the files of an earlier attempt of a sweep job that was run again

A sweep directory holds its jobs' run directories, `.cnnbench.lock` while a `cnnbench train -m`
runs it, and `.cnnbench_sweep.json`: its manifest, the record of its jobs (cnnbench.sweep.manifest).

Every file cnnbench writes goes through `writer` (atomic, the umask's mode), checked against its
`Writer` (`policy`: where it may go, what it may replace); caches go to `cache_dir()`.

The package's face: the names below are the contract; each lives in one module.
"""
from cnnbench.rundir.attempts import (
    discard_unstarted,
    holds_run,
    set_aside,
)
from cnnbench.rundir.cache import (
    cache_dir,
    cache_writer,
)
from cnnbench.rundir.layout import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    COMPLETED,
    CONFIG_HASH_FILE,
    DIVERGED,
    EARLIER_DIR,
    FAILED,
    FINAL_STATUSES,
    HISTORY_FILE,
    HYDRA_DIR,
    INTERRUPTED,
    LAST_CHECKPOINT,
    LOCK_FILE,
    LOG_FILE,
    METRICS_FILE,
    NOT_STARTED,
    OLD_TB_DIR,
    PRUNED,
    RUNNING,
    STARTING,
    SWEEP_RECORD_FILE,
    TB_DIR,
    best_checkpoint,
    enclosing_run,
    find_run_dirs,
    is_run_dir,
    last_checkpoint,
    metrics_file,
    runs_inside,
)
from cnnbench.rundir.lock import (
    RunLock,
    refuse_planted_links,
)
from cnnbench.rundir.policy import (
    Writer,
)
from cnnbench.rundir.record import (
    NO_METRICS,
    UNREADABLE,
    RunRecord,
    job_starts,
    load_metrics,
    read_config_hash,
    read_metrics,
    record_outcome,
    run_status,
    write_config_hash,
)
from cnnbench.rundir.writer import (
    append_text,
    begins_with,
    claim_outputs,
    require_folder,
    write_bytes,
    write_json_atomic,
    write_text,
    write_with,
)

__all__ = [
    "BEST_CHECKPOINT",
    "CHECKPOINT_DIR",
    "COMPLETED",
    "CONFIG_HASH_FILE",
    "DIVERGED",
    "EARLIER_DIR",
    "FAILED",
    "FINAL_STATUSES",
    "HISTORY_FILE",
    "HYDRA_DIR",
    "INTERRUPTED",
    "LAST_CHECKPOINT",
    "LOCK_FILE",
    "LOG_FILE",
    "METRICS_FILE",
    "NOT_STARTED",
    "NO_METRICS",
    "OLD_TB_DIR",
    "PRUNED",
    "RUNNING",
    "STARTING",
    "SWEEP_RECORD_FILE",
    "TB_DIR",
    "UNREADABLE",
    "RunLock",
    "RunRecord",
    "Writer",
    "append_text",
    "begins_with",
    "best_checkpoint",
    "cache_dir",
    "cache_writer",
    "claim_outputs",
    "discard_unstarted",
    "enclosing_run",
    "find_run_dirs",
    "holds_run",
    "is_run_dir",
    "job_starts",
    "last_checkpoint",
    "load_metrics",
    "metrics_file",
    "read_config_hash",
    "read_metrics",
    "record_outcome",
    "refuse_planted_links",
    "require_folder",
    "run_status",
    "runs_inside",
    "set_aside",
    "write_bytes",
    "write_config_hash",
    "write_json_atomic",
    "write_text",
    "write_with",
]
