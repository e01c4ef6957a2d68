"""The bottleneck decision tree on inputs we give it, and npu-smi's table in the shape it prints."""

from __future__ import annotations

from workbench.core.probes.bottleneck import Device, find_bottleneck, parse_npu_smi

GIB = 2**30


def metrics(**total) -> dict:
    return {"all": total, "engines": {"0": total}}


def test_the_decision_tree() -> None:
    busy = [Device("GPU 0", 93.0, 70 * GIB, 80 * GIB)]
    assert find_bottleneck(metrics(), busy, {"python[1]": 40.0}).verdict == "compute bound"
    full = [Device("GPU 0", 60.0, 78 * GIB, 80 * GIB)]
    found = find_bottleneck(metrics(preemptions_ps=2.5, kv_usage=0.97), full, {"python[1]": 40.0})
    assert found.verdict == "memory bound"
    assert "GPU 0 memory 98% used" in found.evidence and "2.50 preemptions/s" in found.evidence
    idle = [Device("GPU 0", 20.0, 70 * GIB, 80 * GIB)]
    cpu = find_bottleneck(metrics(kv_usage=0.3), idle, {"python[1]": 99.0, "python[2]": 10.0})
    assert cpu.verdict == "CPU bound" and cpu.evidence[0] == "python[1] at 99% CPU"
    net = find_bottleneck(metrics(kv_usage=0.3), idle, {"python[1]": 30.0})
    assert net.verdict == "network or client bound" and not net.missing


def test_missing_inputs_are_named() -> None:
    found = find_bottleneck(metrics(kv_usage=0.2), None, None)
    assert found.verdict == "unknown"
    assert any("nvidia-ml-py" in m for m in found.missing) and any("CPU" in m for m in found.missing)
    # without a device, KV full and preemptions still say memory bound
    assert find_bottleneck(metrics(kv_usage=0.95, preemptions_ps=1.0), None, None).verdict == "memory bound"
    assert "bottleneck: unknown" in found.text() and "missing:" in found.text()


NPU_SMI = """+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.6                   Version: 23.0.6                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 96.1        45                0    / 0             |
| 0                         | 0000:C1:00.0  | 87          0    / 0          58000/ 65536         |
+===========================+===============+====================================================+
| 1     910B3               | OK            | 92.4        44                0    / 0             |
| 0                         | 0000:01:00.0  | 3           0    / 0          3369 / 65536         |
+===========================+===============+====================================================+
"""


def test_npu_smi_table() -> None:
    found = parse_npu_smi(NPU_SMI)
    assert [(d.util, d.used // 2**20, d.total // 2**20) for d in found] == [(87.0, 58000, 65536), (3.0, 3369, 65536)]
