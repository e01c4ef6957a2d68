"""B10: does watching slow the server? Output tokens/s under `workbench load`, the server started
bare vs supervised by the workbench (`run --headless --serve`: liveness probed) with its /metrics
scraped every 2 s by `workbench metrics`. Interleaved repeats, medians; goal: supervised ≥ 0.98× bare.

    python bench/b10.py [--repeats N] [--requests M]      (run.py runs it as B10)
    python bench/b10.py --repeats 1 --requests 40 --prompt-tokens 24 --max-tokens 32 \
        --server VENV/bin/python -m vllm.entrypoints.openai.api_server --model MODEL --max-model-len 256
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.core.probes.load import LoadSpec, run_load  # noqa: E402

PY = sys.executable


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never became healthy")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one(supervised: bool, spec: LoadSpec, tmp: Path, server: list[str] | None = None) -> float:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    argv = [*(server or [PY, "-m", "workbench.sim", "healthy", "--time-scale", "0.02"]), "--port", str(port)]
    env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp / "state")}
    helpers: list[subprocess.Popen] = []
    log = (tmp / f"server-{port}.log").open("wb")
    if supervised:
        proc = subprocess.Popen([PY, "-m", "workbench", "run", "--headless", "--serve", "--quiet", "--no-smoke", "--", *argv],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    else:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_healthy(url, 120.0 if server is None else 1200.0)  # a real server starts in minutes here
        if supervised:  # the scraper in its steady state: started, and its first printout done
            printed = tmp / f"metrics-{port}.txt"
            with printed.open("wb") as out:
                helpers.append(subprocess.Popen([PY, "-m", "workbench", "metrics", url, "--interval", "2"],
                                                stdout=out, stderr=subprocess.STDOUT, env=env))
            deadline = time.monotonic() + 60
            while printed.stat().st_size == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
        report = run_load(url, LoadSpec(**vars(spec)))
        if report["failed"]:
            raise RuntimeError(f"B10: {report['failed']} requests failed: {report['errors']}")
        return float(report["output_throughput"])
    finally:
        for helper in helpers:
            _stop(helper)
        _stop(proc)
        log.close()


def b10(repeats: int, requests: int, tmp: Path, server: list[str] | None = None, prompt_tokens: int = 128,
        max_tokens: int = 64) -> tuple[str, float, float, float]:
    spec = LoadSpec(concurrency=16, requests=requests, prompt_tokens=prompt_tokens, max_tokens=max_tokens)
    bare, ours = [], []
    for _ in range(repeats):  # interleaved, so a noisy neighbour hits both alike
        bare.append(one(False, spec, tmp, server))
        ours.append(one(True, spec, tmp, server))
    print(f"B10 runs (output tok/s): bare {[round(b, 1) for b in bare]}, supervised {[round(o, 1) for o in ours]}",
          file=sys.stderr)
    base, mine = statistics.median(bare), statistics.median(ours)
    # the table's ratio column is "at most the goal": bare/supervised ≤ 1/0.98
    return (f"B10 load output tok/s: bare / supervised, medians of {repeats} (goal supervised >= 0.98x)",
            base / mine, mine, base)


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--server", nargs=argparse.REMAINDER, default=None,
                        help="the server command without --port (default: the simulator)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        label, ratio, mine, base = b10(args.repeats, args.requests, Path(name), args.server, args.prompt_tokens,
                                       args.max_tokens)
    print(f"{label}: ratio {ratio:.3f} (supervised/bare {1 / ratio:.3f}), supervised {mine:.1f}, bare {base:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
