"""Benchmarks: the workbench beside plain baselines, in one run; ratios first.

    python bench/run.py            # full sizes (a few minutes)
    python bench/run.py --quick    # small sizes, so the benchmarks cannot rot (CI)

B1  producer wall time under `workbench run --headless` vs under `script` (a bare pty reader)
B2  the same producer under the TUI (the real program in tmux) vs under `script`
B3  `workbench analyze` of a vLLM log vs `grep -E -f` with the exported patterns
B4  key press -> screen updated (Pilot, in-process) while the simulator floods 100k lines/s, vs idle
B5  workbench peak RSS after N lines through one run vs after 10k lines
B6  stack dump of a 4-process Python tree (parallel) vs 4 sequential `py-spy dump`
B7  error line written -> FindingRaised event, p50/p95
B8  `workbench --help` vs `python -c pass`; TUI start to first frame (tmux)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def producer_seconds(wrapper: list[str], lines: int, tmp: Path) -> float:
    report = tmp / f"report-{time.monotonic_ns()}"
    env = {**os.environ, "PRODUCER_REPORT": str(report), "WORKBENCH_STATE_DIR": str(tmp / "state")}
    cmd = [*wrapper, PY, str(HERE / "producer.py"), str(lines)]
    if wrapper and wrapper[0] == "script":
        cmd = ["script", "-qfc", " ".join(cmd[3:]), "/dev/null"]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return float(report.read_text().split()[0])


def b1(lines: int, repeats: int, tmp: Path) -> tuple[str, float, float, float]:
    base = min(producer_seconds(["script", "-qfc", ""], lines, tmp) for _ in range(repeats))
    ours = min(producer_seconds([PY, "-m", "workbench", "run", "--headless", "--no-smoke", "--quiet", "--"], lines, tmp)
               for _ in range(repeats))
    return "B1 producer under run --headless / script", ours / base, ours, base


def b3(lines: int, tmp: Path) -> tuple[str, float, float, float]:
    log = tmp / "big.log"
    line = ("(EngineCore_DP0 pid=4242) INFO 11-23 17:02:10 [v1/engine/core.py:812] "
            "EngineCore loop step {i}: scheduled 3 reqs, 128 tokens, kv usage 12.5%\n")
    with open(log, "w") as handle:
        for start in range(0, lines, 10_000):
            handle.write("".join(line.format(i=i) for i in range(start, min(lines, start + 10_000))))
        handle.write("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB\n")
    patterns = tmp / "patterns.txt"
    with open(patterns, "w") as handle:
        subprocess.run([PY, "-m", "workbench", "signatures", "export"], stdout=handle, check=True)
    started = time.perf_counter()
    subprocess.run([PY, "-m", "workbench", "analyze", "--json", str(log)], stdout=subprocess.DEVNULL, check=False)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(["grep", "-E", "-c", "-f", str(patterns), str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    base = time.perf_counter() - started
    return f"B3 analyze {lines:,} lines / grep -E -f", ours / base, ours, base


def b7(samples: int, tmp: Path) -> tuple[str, float, float, float]:
    sys.path.insert(0, str(HERE.parent))
    from workbench.core.engine import Engine
    from workbench.core.events import FindingRaised
    from workbench.core.session import Session

    code = (
        "import sys, time\n"
        f"for i in range({samples}):\n"
        "    time.sleep(0.2)\n"
        "    print(f'ERROR {time.time():.6f} torch.OutOfMemoryError: CUDA out of memory #{i}', flush=True)\n"
    )
    latencies: list[float] = []
    engine = Engine(Session(tmp / "b7"))

    def on_event(event: object) -> None:
        if isinstance(event, FindingRaised):
            sent = float(event.finding["line"].split()[1])
            latencies.append(time.time() - sent)

    engine.bus.subscribe(on_event)
    # a finding is raised once per id and run, so each sample is its own short run
    for _ in range(samples):
        run = engine.launch([PY, "-c", code.replace(f"range({samples})", "range(1)")])
        run.exited.wait(10)
    engine.shutdown()
    p50 = statistics.median(latencies) * 1000
    p95 = sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)] * 1000
    return "B7 error->finding p95 ms (baseline col: p50)", p95 / 100, p95, p50


def _tmux(socket: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True)


def b2(lines: int, tmp: Path) -> tuple[str, float, float, float]:
    base = producer_seconds(["script", "-qfc", ""], lines, tmp)
    report = tmp / "b2-report"
    socket = f"wb-bench-{os.getpid()}"
    env = {**os.environ, "PRODUCER_REPORT": str(report), "WORKBENCH_STATE_DIR": str(tmp / "state")}
    command = f"{PY} -m workbench -- {PY} {HERE / 'producer.py'} {lines}"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b2", "-x", "160", "-y", "45", command],
                   env=env, check=True)
    try:
        deadline = time.monotonic() + 600
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        ours = float(report.read_text().split()[0])
        screen = ""
        for _ in range(50):  # the TUI draws the tail a moment after the producer is done
            screen = _tmux(socket, "capture-pane", "-p", "-t", "b2").stdout
            if "EngineCore loop step" in screen:
                break
            time.sleep(0.1)
        if "EngineCore loop step" not in screen:
            print("B2: the TUI did not show the producer's lines", file=sys.stderr)
    finally:
        _tmux(socket, "send-keys", "-t", "b2", "q")
        time.sleep(2)
        _tmux(socket, "kill-server")
    return "B2 producer under the TUI (tmux) / script", ours / base, ours, base


def b4(presses: int, tmp: Path) -> tuple[str, float, float, float]:
    """The real program in tmux: send `?`, poll the pane until the help screen is drawn."""
    import socket as socketlib

    def port() -> int:
        with socketlib.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def measure(scenario: str, extra: str) -> list[float]:
        socket = f"wb-b4-{os.getpid()}-{scenario}"
        env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp / f"state-b4-{scenario}")}
        command = f"{PY} -m workbench -- {PY} -m workbench.sim {scenario} --port {port()} --time-scale 0.05 {extra}"
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b4", "-x", "160", "-y", "45", command],
                       env=env, check=True)
        latencies = []
        try:
            deadline = time.monotonic() + 60
            while "serving" not in _tmux(socket, "capture-pane", "-p", "-t", "b4").stdout:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"B4: {scenario} never reached serving")
                time.sleep(0.1)
            time.sleep(2.0)  # the flood is on
            for _ in range(presses):
                started = time.perf_counter()
                _tmux(socket, "send-keys", "-t", "b4", "?")
                while "every action is also in the command palette" not in _tmux(socket, "capture-pane", "-p", "-t", "b4").stdout:
                    if time.perf_counter() - started > 10:
                        break
                latencies.append(time.perf_counter() - started)
                _tmux(socket, "send-keys", "-t", "b4", "Escape")
                time.sleep(0.3)
        finally:
            _tmux(socket, "send-keys", "-t", "b4", "q")
            time.sleep(2.0)
            _tmux(socket, "kill-server")
        return latencies

    idle = measure("healthy", "")
    flood = measure("log-flood", "--rate 100000 --seconds 600")
    p95 = sorted(flood)[max(0, int(len(flood) * 0.95) - 1)] * 1000
    idle_p95 = sorted(idle)[max(0, int(len(idle) * 0.95) - 1)] * 1000
    print(f"B4: p50 flood {statistics.median(flood) * 1000:.0f} ms, idle {statistics.median(idle) * 1000:.0f} ms "
          "(includes tmux capture-pane polling, ~5 ms)", file=sys.stderr)
    return "B4 key->screen p95 ms, flood 100k/s (baseline: idle)", p95 / 100, p95, idle_p95


def _peak_rss_mib(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS of the workbench process itself (not of what it runs), sampled every 20 ms."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    handle = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, handle.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    return peak / 2**20


def b5(lines: int, tmp: Path) -> tuple[str, float, float, float]:
    env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp / "state"), "PRODUCER_REPORT": str(tmp / "b5")}
    run = [PY, "-m", "workbench", "run", "--headless", "--no-smoke", "--quiet", "--"]
    small = _peak_rss_mib([*run, PY, str(HERE / "producer.py"), "10000"], env)
    big = _peak_rss_mib([*run, PY, str(HERE / "producer.py"), str(lines)], env)
    return f"B5 RSS MiB after {lines:,} lines (ratio: growth MiB/50)", (big - small) / 50, big, small


def b6(tmp: Path) -> tuple[str, float, float, float]:
    sys.path.insert(0, str(HERE.parent))
    from workbench.core.stacks import dump_tree, py_spy_path

    code = ("import os, subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.01)']) for _ in range(3)]\n"
            "print(' '.join(str(k.pid) for k in kids), flush=True)\n"
            "while True: time.sleep(0.01)\n")
    root = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [root.pid, *map(int, root.stdout.readline().split())]
        time.sleep(0.5)
        spy = py_spy_path() or "py-spy"
        started = time.perf_counter()
        for pid in pids:
            subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, check=False)
        base = time.perf_counter() - started
        started = time.perf_counter()
        dumps = dump_tree(pids)
        ours = time.perf_counter() - started
        if sum(1 for d in dumps if d.ok) != 4:
            print(f"B6: only {sum(1 for d in dumps if d.ok)} of 4 dumped", file=sys.stderr)
    finally:
        for pid in pids[1:]:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        root.kill()
        root.wait()
    return "B6 dump 4-process tree / 4 sequential py-spy", ours / base, ours, base


def b8(tmp: Path) -> list[tuple[str, float, float, float]]:
    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
        return min(times)

    base = best([PY, "-c", "pass"])
    ours = best([PY, "-m", "workbench", "--help"])
    rows = [("B8 --help s over python -c pass (goal <= 0.3)", (ours - base) / 0.3, ours, base)]
    if shutil.which("tmux"):
        socket = f"wb-b8-{os.getpid()}"
        env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp / "state8")}
        started = time.perf_counter()
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "b8", "-x", "160", "-y", "45",
                        f"{PY} -m workbench -- sleep 60"], env=env, check=True)
        first = None
        while time.perf_counter() - started < 30:
            if "Quit" in _tmux(socket, "capture-pane", "-p", "-t", "b8").stdout:
                first = time.perf_counter() - started
                break
            time.sleep(0.01)
        _tmux(socket, "send-keys", "-t", "b8", "q")
        time.sleep(1.5)
        _tmux(socket, "kill-server")
        if first is not None:
            rows.append(("B8 TUI start to first frame s (goal <= 1.0)", first / 1.0, first, base))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if shutil.which("script"):
            rows.append(b1(100_000 if quick else 2_000_000, 1 if quick else 3, tmp))
        if shutil.which("script") and shutil.which("tmux"):
            rows.append(b2(100_000 if quick else 2_000_000, tmp))
        if shutil.which("grep"):
            rows.append(b3(100_000 if quick else 1_000_000, tmp))
        if shutil.which("tmux"):
            rows.append(b4(5 if quick else 30, tmp))
        rows.append(b5(200_000 if quick else 10_000_000, tmp))
        rows.append(b6(tmp))
        rows.append(b7(3 if quick else 20, tmp))
        rows += b8(tmp)
    print(f"{'benchmark':<48} {'ratio':>7} {'ours':>10} {'baseline':>10}")
    for label, ratio, ours, base in rows:
        print(f"{label:<48} {ratio:7.2f} {ours:10.3f} {base:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
