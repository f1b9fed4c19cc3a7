"""A call from Python leaves the process as it found it. A run seeds the random generators,
chooses torch's threads and deterministic settings, has Hydra set up logging (its handlers,
the run's train.log), rewrites sys.argv and the environment, installs signal handlers; all of
that is put back when the call ends, however it ends."""
from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP"))
                if s is not None)


@dataclass
class LoggerState:
    handlers: list
    level: int
    propagate: bool
    disabled: bool


@dataclass
class ProcessState:
    cwd: str
    environ: dict[str, str]
    argv: tuple[list[str], list[str]]  # the list object, and what it held
    streams: tuple[Any, Any]
    signals: dict[int, Any]
    loggers: dict[str, LoggerState]
    logging_disabled: int
    warning_filters: list
    python_rng: Any
    numpy_rng: Any
    torch: dict[str, Any] = field(default_factory=dict)
    hydra_initialized: bool = False


def _loggers() -> dict[str, logging.Logger]:
    found = {name: lg for name, lg in logging.Logger.manager.loggerDict.items()
             if isinstance(lg, logging.Logger)}
    found[""] = logging.getLogger()
    return found


def _torch_state() -> dict[str, Any]:
    import torch

    cudnn = torch.backends.cudnn
    state = {"rng": torch.get_rng_state(), "threads": torch.get_num_threads(),
             "deterministic": torch.are_deterministic_algorithms_enabled(),
             "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
             "cudnn": (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32),
             "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
             "matmul_precision": torch.get_float32_matmul_precision(),
             "dtype": torch.get_default_dtype(), "grad": torch.is_grad_enabled()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def _restore_torch(state: dict[str, Any]) -> None:
    import torch

    cudnn = torch.backends.cudnn
    torch.set_rng_state(state["rng"])
    if "cuda_rng" in state:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = state["cudnn"]
    torch.backends.cuda.matmul.allow_tf32 = state["matmul_tf32"]
    torch.set_float32_matmul_precision(state["matmul_precision"])
    torch.set_default_dtype(state["dtype"])
    torch.set_grad_enabled(state["grad"])


def _hydra_initialized() -> bool:
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().is_initialized()


def capture() -> ProcessState:
    """What a run may change in this process, as it is now."""
    import numpy as np

    return ProcessState(
        cwd=os.getcwd(), environ=dict(os.environ), argv=(sys.argv, list(sys.argv)),
        streams=(sys.stdout, sys.stderr),
        signals={s: signal.getsignal(s) for s in SIGNALS},
        loggers={name: LoggerState(list(lg.handlers), lg.level, lg.propagate, lg.disabled)
                 for name, lg in _loggers().items()},
        logging_disabled=logging.root.manager.disable,
        warning_filters=list(warnings.filters),
        python_rng=random.getstate(), numpy_rng=np.random.get_state(),
        torch=_torch_state(), hydra_initialized=_hydra_initialized())


def _restore_logging(state: ProcessState) -> None:
    for name, lg in _loggers().items():
        before = state.loggers.get(name) or LoggerState([], logging.NOTSET, True, False)
        for handler in [h for h in lg.handlers if h not in before.handlers]:
            lg.removeHandler(handler)
            with contextlib.suppress(Exception):  # a handler's own close: best effort
                handler.close()
        for handler in [h for h in before.handlers if h not in lg.handlers]:
            lg.addHandler(handler)
        lg.setLevel(before.level)
        lg.propagate, lg.disabled = before.propagate, before.disabled
    logging.disable(state.logging_disabled)


def _restore_environ(before: dict[str, str]) -> None:
    for key in [k for k in os.environ if k not in before]:
        del os.environ[key]
    for key, value in before.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def restore(state: ProcessState) -> None:
    """The process put back as `state` found it."""
    import numpy as np
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    os.chdir(state.cwd)
    _restore_environ(state.environ)
    sys.argv = state.argv[0]
    sys.argv[:] = state.argv[1]
    sys.stdout, sys.stderr = state.streams
    if threading.current_thread() is threading.main_thread():
        for signum, handler in state.signals.items():
            if handler is not None:
                signal.signal(signum, handler)
    _restore_logging(state)
    warnings.filters[:] = state.warning_filters
    random.setstate(state.python_rng)
    np.random.set_state(state.numpy_rng)
    _restore_torch(state.torch)
    if not state.hydra_initialized:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Inside: a run may change the process; after: it is as it was."""
    state = capture()
    try:
        yield
    finally:
        restore(state)
