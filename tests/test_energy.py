"""The GPU energy meter, with a stand-in for NVML (the real one needs an NVIDIA GPU)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cnnbench.run import energy
from cnnbench.run.energy import EnergyMeter, GpuIdentity, across_processes

GPU = GpuIdentity("NVIDIA Test GPU", "GPU-1234abcd-0000-1111-2222-333344445555",
                  "00000000:3b:00.0")
CUDA = torch.device("cuda", 0)


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """The few pynvml calls the meter makes; the energy counter gives `counter` in turn (mJ)."""

    NVMLError = FakeNVMLError

    def __init__(self, *counter: int, uuids=(GPU.uuid,), buses=(), fail_init=None,
                 fail_energy=None) -> None:
        self.counter = list(counter)
        self.uuids, self.buses = uuids, buses
        self.fail_init, self.fail_energy = fail_init, fail_energy
        self.calls: list[str] = []

    def nvmlInit(self):
        self.calls.append("init")
        if self.fail_init:
            raise FakeNVMLError(self.fail_init)

    def nvmlShutdown(self):
        self.calls.append("shutdown")

    def nvmlDeviceGetHandleByUUID(self, uuid):
        if uuid not in self.uuids:
            raise FakeNVMLError("Not Found")
        return ("uuid", uuid)

    def nvmlDeviceGetHandleByPciBusId(self, bus):
        if bus not in self.buses:
            raise FakeNVMLError("Not Found")
        return ("bus", bus)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        self.calls.append(f"energy {handle[0]}")
        if self.fail_energy:
            raise FakeNVMLError(self.fail_energy)
        return self.counter.pop(0)


def meter(nvml, earlier=0.0, device=CUDA) -> EnergyMeter:
    return EnergyMeter(device, earlier, identify=lambda d: GPU, nvml_loader=lambda: nvml)


def test_joules_are_the_counter_difference():
    nvml = FakeNVML(1_000_000, 1_250_500)
    m = meter(nvml)
    m.start()
    joules, note = m.stop()
    assert joules == 250.5
    assert note.startswith("training only") and GPU.uuid in note and GPU.name in note
    assert nvml.calls == ["init", "energy uuid", "energy uuid", "shutdown"]


def test_a_resumed_run_adds_its_earlier_joules_and_reads_along_the_way():
    m = meter(FakeNVML(5_000, 7_000, 9_000), earlier=100.0)
    m.start()
    assert m.read() == 102.0  # what a checkpoint saves at the end of an epoch
    assert m.stop()[0] == 104.0


def test_the_gpu_is_found_by_pci_bus_id_when_its_uuid_is_not():
    nvml = FakeNVML(0, 2_000, uuids=(), buses=(GPU.pci_bus_id,))
    m = meter(nvml)
    m.start()
    assert m.stop()[0] == 2.0 and "energy bus" in nvml.calls


@pytest.mark.parametrize("nvml,reason", [
    (FakeNVML(fail_init="Driver Not Loaded"), "NVML not available: FakeNVMLError: Driver Not "
                                              "Loaded"),
    (FakeNVML(fail_energy="Not Supported"), "NVML not available: FakeNVMLError: Not Supported"),
    (FakeNVML(uuids=(), buses=()), "NVML not available: FakeNVMLError: Not Found"),
])
def test_nvml_errors_leave_null_with_the_reason(nvml, reason):
    m = meter(nvml)
    m.start()
    assert m.read() is None
    assert m.stop() == (None, reason)


def test_an_error_on_the_last_reading_is_null_too():
    m = meter(FakeNVML(1_000))
    m.start()
    m.nvml.fail_energy = "GPU is lost"
    assert m.stop() == (None, "NVML not available: FakeNVMLError: GPU is lost")


def test_without_nvidia_ml_py_the_reason_says_how_to_install_it():
    def missing():
        raise ModuleNotFoundError("No module named 'pynvml'")

    m = EnergyMeter(CUDA, identify=lambda d: GPU, nvml_loader=missing)
    m.start()
    assert m.stop() == (None, "NVML not available: nvidia-ml-py is not installed (pip install "
                              "nvidia-ml-py)")


def test_cpu_runs_never_touch_nvml():
    def must_not_load():
        raise AssertionError("pynvml imported on a CPU run")

    m = EnergyMeter(torch.device("cpu"), nvml_loader=must_not_load)
    m.start()
    assert m.read() is None
    assert m.stop() == (None, "CPU run: no GPU energy counter")


def test_an_earlier_part_without_a_reading_makes_the_total_unknown():
    m = meter(FakeNVML(0, 1_000), earlier=None)
    m.start()
    assert m.stop() == (None, "an earlier part of this resumed run has no energy reading")


def test_the_torch_device_is_mapped_by_uuid_not_index(monkeypatch):
    props = SimpleNamespace(name="NVIDIA H200", uuid="5c4f0e1a-aaaa-bbbb-cccc-0123456789ab",
                            pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    gpu = energy.gpu_identity(torch.device("cuda", 1))
    assert gpu == GpuIdentity("NVIDIA H200", "GPU-5c4f0e1a-aaaa-bbbb-cccc-0123456789ab",
                              "00000000:3b:00.0")


def test_ddp_sums_every_process_or_records_null():
    two = lambda t: t * 2  # noqa: E731  (an all-reduce over two processes that read alike)
    cpu = torch.device("cpu")
    assert across_processes((1.5, "training only"), 1, two, cpu) == (1.5, "training only")
    joules, note = across_processes((1.5, "training only"), 2, two, cpu)
    assert joules == 3.0 and note == "training only; summed over the GPUs of the 2 processes"
    assert across_processes((None, "CPU run: no GPU energy counter"), 2, two, cpu) == (
        None, "CPU run: no GPU energy counter")
    one_missing = lambda t: t + torch.tensor([0.0, 1.0], dtype=t.dtype)  # noqa: E731
    assert across_processes((1.5, "training only"), 2, one_missing, cpu) == (
        None, "1 of 2 processes have no energy reading")


def test_the_summary_table_shows_joules_only_when_measured():
    assert energy.energy_summary(None) == {}
    assert energy.energy_summary(12345.6) == {"GPU energy (training)": "12,346 J"}
