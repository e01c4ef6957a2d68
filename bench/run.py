"""Benchmarks: the workbench beside plain baselines, in one run; ratios first.

    python bench/run.py            # full sizes (a few minutes)
    python bench/run.py --quick    # small sizes, so the benchmarks cannot rot (CI)

B1  producer wall time under `workbench run --headless` vs under `script` (a bare pty reader)
B3  `workbench analyze` of a vLLM log vs `grep -E -f` with the exported patterns
B7  error line written -> FindingRaised event, p50/p95
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
        if shutil.which("grep"):
            rows.append(b3(100_000 if quick else 1_000_000, tmp))
        rows.append(b7(3 if quick else 20, tmp))
    print(f"{'benchmark':<48} {'ratio':>7} {'ours':>10} {'baseline':>10}")
    for label, ratio, ours, base in rows:
        print(f"{label:<48} {ratio:7.2f} {ours:10.3f} {base:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
