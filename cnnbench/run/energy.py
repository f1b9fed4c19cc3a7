"""The GPU energy of training, from NVML's total-energy counter (nvidia-ml-py).

`EnergyMeter(device).start()` reads the counter (millijoules since the driver loaded) of the GPU
the run uses, `stop()` reads it again and gives the joules in between, or None with the reason:
a CPU run, nvidia-ml-py missing, an NVML error, a GPU without the counter (before Volta). The
GPU is found by the UUID torch reports for the device (its PCI bus id if that fails), never by
the index, which CUDA_VISIBLE_DEVICES renumbers. `pynvml` is imported on CUDA runs only.

The counter belongs to the whole GPU: another process working on it at the same time adds to
the reading. It is updated a few times a second, so runs of a second or less read coarsely.
Under DDP each process measures its own GPU and the run records the sum (`across_processes`).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import torch

CPU_NOTE = "{device} run: no GPU energy counter"
SPAN = "training only (the span of train_seconds: the epochs, not setup, compiling or testing)"


@dataclass(frozen=True)
class GpuIdentity:
    name: str
    uuid: str          # as NVML spells it: GPU-xxxxxxxx-...
    pci_bus_id: str    # domain:bus:device.function, e.g. 00000000:3b:00.0


def gpu_identity(device: torch.device) -> GpuIdentity:
    """The GPU behind a torch CUDA device, as NVML can look it up."""
    props = torch.cuda.get_device_properties(device)
    uuid = str(props.uuid)
    if not uuid.startswith(("GPU-", "MIG-")):
        uuid = "GPU-" + uuid
    bus = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    return GpuIdentity(props.name, uuid, bus)


def load_nvml() -> ModuleType:
    import pynvml  # nvidia-ml-py

    return pynvml


def nvml_handle(nvml: Any, gpu: GpuIdentity) -> Any:
    """NVML's handle of `gpu`: by UUID, else by PCI bus id."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(gpu.uuid)
    except Exception:  # noqa: BLE001 (NVMLError: e.g. a MIG instance's UUID)
        return nvml.nvmlDeviceGetHandleByPciBusId(gpu.pci_bus_id)


def _why(err: BaseException) -> str:
    if isinstance(err, ImportError):
        return "NVML not available: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    return f"NVML not available: {type(err).__name__}: {err}"


class EnergyMeter:
    """Joules the run's GPU used between start() and stop(), plus `earlier` joules (those of
    the earlier parts of a resumed run; None: unknown, and so is the total)."""

    def __init__(self, device: torch.device, earlier: float | None = 0.0,
                 identify: Callable[[torch.device], GpuIdentity] = gpu_identity,
                 nvml_loader: Callable[[], Any] = load_nvml) -> None:
        self.device = device
        self.earlier = earlier
        self.identify = identify
        self.nvml_loader = nvml_loader
        self.nvml: Any = None
        self.handle: Any = None
        self.start_mj: int | None = None
        self.gpu: GpuIdentity | None = None
        self.note: str | None = None

    def start(self) -> None:
        if self.device.type != "cuda":
            self.note = CPU_NOTE.format(device=self.device.type.upper())
            return
        try:
            self.nvml = self.nvml_loader()
            self.nvml.nvmlInit()
            self.gpu = self.identify(self.device)
            self.handle = nvml_handle(self.nvml, self.gpu)
            self.start_mj = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as err:  # noqa: BLE001 (any NVML failure leaves the value null)
            self.start_mj, self.note = None, _why(err)

    def read(self) -> float | None:
        """Joules so far (earlier parts included); None when there is no reading."""
        if self.start_mj is None or self.earlier is None:
            return None
        try:
            now = int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as err:  # noqa: BLE001
            self.start_mj, self.note = None, _why(err)
            return None
        return self.earlier + (now - self.start_mj) / 1000.0

    def stop(self) -> tuple[float | None, str | None]:
        """(joules, note): the energy of training and what it covers, or None and why."""
        joules = self.read()
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
        self.start_mj = None
        if joules is None and self.note is None and self.earlier is None:
            self.note = "an earlier part of this resumed run has no energy reading"
        if joules is None:
            return None, self.note
        gpu = self.gpu
        return joules, f"{SPAN}; NVML total-energy counter of {gpu.name} ({gpu.uuid})"


def across_processes(reading: tuple[float | None, str | None], world_size: int,
                     reduce: Callable[[torch.Tensor], torch.Tensor],
                     device: torch.device) -> tuple[float | None, str | None]:
    """The run's energy under DDP: the sum of every process's GPU; null when one has none.
    Every process must call it (one all-reduce)."""
    joules, note = reading
    if world_size == 1:
        return joules, note
    values = torch.tensor([joules or 0.0, 1.0 if joules is None else 0.0],
                          dtype=torch.float64, device=device)
    total, missing = reduce(values).tolist()
    if missing:
        return None, note if joules is None else (
            f"{int(missing)} of {world_size} processes have no energy reading")
    return total, f"{note}; summed over the GPUs of the {world_size} processes"


def energy_summary(joules: float | None) -> dict[str, str]:
    """The row of the run's summary table for the energy (none without a reading)."""
    return {} if joules is None else {"GPU energy (training)": f"{joules:,.0f} J"}
