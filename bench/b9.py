"""B9: engine death while serving -> the verdict in the JSON of `run --headless --serve`.

The simulator's engine core is SIGKILLed once the workbench says it serves; the latency is the
time from the kill to the `failed` entry of the result's verdict history (goal <= 2 s, worst of
the runs; the baseline column holds the median).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_death_to_verdict(tmp: Path) -> float:
    port = _port()
    command = [sys.executable, "-m", "workbench", "run", "--headless", "--serve", "--json", "--session-dir",
               str(tmp / f"b9-{port}"), "--", sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port),
               "--time-scale", "0.1", "--log-format", "0.32"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        if "serving; Ctrl-C stops" in line:
            break
    else:
        raise RuntimeError("B9: the simulator never served")
    engine = next(p for p in psutil.Process(proc.pid).children(recursive=True)
                  if "workbench.sim.engine_core" in " ".join(p.cmdline()))
    killed = time.time()
    os.kill(engine.pid, signal.SIGKILL)
    out = proc.stdout.read()
    proc.stderr.read()
    proc.wait(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    changed = result["history"][-1]
    if changed["verdict"] != "failed" or "SIGKILL" not in changed["reason"]:
        raise RuntimeError(f"B9: verdict {changed['verdict']!r}: {changed['reason']}")
    return changed["time"] - killed


def b9(repeats: int, tmp: Path) -> list[tuple[str, float, float, float]]:
    runs = [engine_death_to_verdict(tmp) for _ in range(repeats)]
    print(f"B9 kill -> verdict runs (s): {[round(r, 3) for r in runs]}", file=sys.stderr, flush=True)
    worst = max(runs)
    return [("B9 engine death -> failed in JSON, worst s (goal <= 2.0; base: median)", worst / 2.0, worst,
             statistics.median(runs))]
