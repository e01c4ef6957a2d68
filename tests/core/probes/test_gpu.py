"""Device memory per PID: summed over devices where NVML answers, empty (never an error) where not."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from workbench.core.probes import gpu


@pytest.fixture
def fresh_nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    gpu._nvml.cache_clear()
    yield
    gpu._nvml.cache_clear()


def fake_nvml(devices: list[list[tuple[int, int | None]]], fail_init: bool = False) -> types.ModuleType:
    module = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda i: i
    module.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in devices[h]]
    return module


def test_memory_is_summed_per_pid_across_devices(fresh_nvml, monkeypatch: pytest.MonkeyPatch) -> None:
    # a TP=2 worker on both GPUs, and a process whose usage NVML cannot see (None)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([[(100, 2**30), (101, None)], [(100, 2**29)]]))
    assert gpu.gpu_memory_by_pid() == {100: 2**30 + 2**29, 101: 0}


def test_no_driver_degrades_to_nothing(fresh_nvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([[(1, 1)]], fail_init=True))
    assert gpu.gpu_memory_by_pid() == {}


def test_no_nvml_package_degrades_to_nothing(fresh_nvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert gpu.gpu_memory_by_pid() == {}
