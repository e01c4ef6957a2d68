"""What a stack dump cannot say about a process: its state (R/S/D/T) and how much CPU it used.

The state is read before py-spy attaches (a traced process reads as stopped); the CPU is the
share used between two samples taken around the dump.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil


@dataclass
class ProcFacts:
    state: str = ""  # psutil's status ("sleeping", "stopped", ...) or a one-letter state
    cpu_percent: float | None = None  # of one core, between two samples; None with one sample


@dataclass
class CpuSample:
    state: str
    cpu_seconds: float
    at: float


def sample(pids: list[int]) -> dict[int, CpuSample]:
    out = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                out[pid] = CpuSample(proc.status(), times.user + times.system, time.monotonic())
        except psutil.Error:
            continue
    return out


def facts_between(before: dict[int, CpuSample], after: dict[int, CpuSample]) -> dict[int, ProcFacts]:
    """The state from the first sample, the CPU share between the two."""
    facts = {}
    for pid, first in before.items():
        last = after.get(pid)
        cpu = None
        if last is not None and last.at > first.at:
            cpu = round(100.0 * max(0.0, last.cpu_seconds - first.cpu_seconds) / (last.at - first.at), 1)
        facts[pid] = ProcFacts(first.state, cpu)
    return facts
