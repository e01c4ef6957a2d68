"""Writes N vLLM-format lines as fast as it can and reports its own wall time on stderr."""

import os
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
LINE = (
    "(EngineCore_DP0 pid=4242) DEBUG 11-23 17:02:10 [v1/engine/core.py:812] "
    "EngineCore loop step %d: scheduled 3 reqs, 128 tokens, kv usage 12.5%%\n"
)


def main() -> None:
    started = time.perf_counter()
    out = sys.stdout.fileno()
    batch = 2000
    for base in range(0, N, batch):
        data = "".join(LINE % i for i in range(base, min(N, base + batch))).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
    elapsed = time.perf_counter() - started
    with open(os.environ.get("PRODUCER_REPORT", "/dev/stderr"), "a") as report:
        report.write(f"{elapsed:.3f}\n")


if __name__ == "__main__":
    main()
