"""Where a serving server is bound, with its evidence: the troubleshooting guides' decision tree.

Device utilisation above 80% → compute bound; device memory (or the KV cache vLLM carved out
of it) near full while requests are preempted → memory bound; otherwise the device waits on
something else: the CPU (a process of the tree saturating its core) or the network/the clients.
Inputs come from NVML (nvidia-ml-py, optional) or `npu-smi`, the tree's CPU and /metrics; a
missing input is named, and the verdict says what it could not tell apart without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from workbench.core.probes.gpu import _nvml

COMPUTE_UTIL = 80.0
MEMORY_FULL = 0.90
CPU_SATURATED = 90.0  # % of one core: a Python process (API server, engine core) at its limit


@dataclass
class Device:
    name: str
    util: float  # percent
    used: int  # bytes
    total: int


@dataclass
class Bottleneck:
    verdict: str  # compute bound | memory bound | CPU bound | network or client bound | unknown
    evidence: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def text(self) -> str:
        out = f"bottleneck: {self.verdict}"
        if self.evidence:
            out += " (" + "; ".join(self.evidence) + ")"
        if self.missing:
            out += "; missing: " + "; ".join(self.missing)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "evidence": self.evidence, "missing": self.missing}


def nvml_devices() -> list[Device] | None:
    nvml = _nvml()
    if nvml is None:
        return None
    devices = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            devices.append(Device(f"GPU {index}", float(util.gpu), int(memory.used), int(memory.total)))
    except Exception:  # a device that stops answering mid-way: what we have
        return devices or None
    return devices


# `npu-smi info`, the second row of each NPU: "| 0 | 0000:C1:00.0 | 35  0 / 0  3369 / 65536 |"
_NPU_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*[0-9A-Fa-f:.]+\s*\|\s*(\d+)\s+\d+\s*/\s*\d+\s+(\d+)\s*/\s*(\d+)\s*\|", re.M)


def parse_npu_smi(text: str) -> list[Device]:
    return [Device(f"NPU {m[1]}", float(m[2]), int(m[3]) * 2**20, int(m[4]) * 2**20) for m in _NPU_ROW.finditer(text)]


def npu_devices() -> list[Device] | None:
    if shutil.which("npu-smi") is None:
        return None
    try:
        done = subprocess.run(["npu-smi", "info"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_npu_smi(done.stdout) or None


def devices() -> tuple[list[Device] | None, str]:
    """The accelerators and where their numbers came from; None where neither source answers."""
    found = nvml_devices()
    if found:
        return found, "NVML"
    found = npu_devices()
    if found:
        return found, "npu-smi"
    return None, ""


def find_bottleneck(derived: dict[str, Any] | None, device_list: list[Device] | None,
                    tree_cpu: dict[str, float] | None) -> Bottleneck:
    """`derived`: MetricsWindow.derived(); `tree_cpu`: process name → % of one core."""
    total = (derived or {}).get("all", {})
    missing = []
    if device_list is None:
        missing.append("device utilisation and memory (no NVML: pip install nvidia-ml-py; no npu-smi)")
    if tree_cpu is None:
        missing.append("the server's process-tree CPU (no PID)")
    if derived is None:
        missing.append("the server's /metrics")
    busy = [d for d in device_list or [] if d.util > COMPUTE_UTIL]
    if busy:
        return Bottleneck("compute bound", [f"{d.name} at {d.util:.0f}% utilisation" for d in busy], missing)
    preempting = (total.get("preemptions_ps") or 0) > 0
    full = [f"{d.name} memory {d.used / d.total * 100:.0f}% used" for d in device_list or []
            if d.total and d.used / d.total >= MEMORY_FULL]
    if total.get("kv_usage", 0) >= MEMORY_FULL:
        full.append(f"KV cache {total['kv_usage'] * 100:.0f}% used")
    if preempting and full:
        return Bottleneck("memory bound", [*full, f"{total['preemptions_ps']:.2f} preemptions/s"], missing)
    hot = sorted(((cpu, name) for name, cpu in (tree_cpu or {}).items() if cpu >= CPU_SATURATED), reverse=True)
    evidence = [f"{d.name} at {d.util:.0f}% utilisation" for d in device_list or []]
    if hot:
        return Bottleneck("CPU bound", [*(f"{name} at {cpu:.0f}% CPU" for cpu, name in hot), *evidence], missing)
    if device_list is None or tree_cpu is None:
        return Bottleneck("unknown", [*full, *evidence], missing)
    waiting = total.get("waiting", 0)
    evidence.append(f"no process of the tree above {CPU_SATURATED:.0f}% CPU")
    if waiting:
        evidence.append(f"{waiting:.0f} requests waiting")
    return Bottleneck("network or client bound", evidence, missing)


def tree_cpu_of(pid: int) -> dict[str, float] | None:
    """% of one core per process of the tree under `pid` over a short sample; None if it is gone."""
    import time

    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        for proc in procs:
            proc.cpu_percent(None)
        time.sleep(0.5)
        return {f"{proc.name()}[{proc.pid}]": proc.cpu_percent(None) for proc in procs if proc.is_running()}
    except psutil.Error:
        return None
