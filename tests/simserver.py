"""A simulated server for the tests that talk to a live one over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.helpers import wait_until


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def sim_server(port: int, *extra: str, scenario: str = "healthy", env: dict[str, str] | None = None) -> Iterator[str]:
    """`workbench sim SCENARIO` on `port` until the block ends; yields its URL once /health answers."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench.sim", scenario, "--port", str(port),
                             "--host", "127.0.0.1", "--time-scale", "0.02", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url) or proc.poll() is not None, timeout=60, what="the simulator's /health")
        assert proc.poll() is None, f"the simulator exited with {proc.returncode}"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
