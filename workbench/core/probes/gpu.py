"""Device memory per PID where NVML is available (optional: pynvml / nvidia-ml-py)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _nvml():
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # not installed, no driver, no device: degrade quietly
        return None


def gpu_memory_by_pid() -> dict[int, int]:
    """PID → bytes of device memory in use; empty where NVML is absent."""
    nvml = _nvml()
    if nvml is None:
        return {}
    used: dict[int, int] = {}
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used[proc.pid] = used.get(proc.pid, 0) + (proc.usedGpuMemory or 0)
    except Exception:
        return used
    return used
