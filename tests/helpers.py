"""Helpers for tests: free ports, the real CLI in a subprocess, finding supervised processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workbench(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
              input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (the way a user does)."""
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )


def descendants_with_token(token_fragment: str) -> list[psutil.Process]:
    """Live processes whose WORKBENCH_SESSION token contains `token_fragment` ("" = any)."""
    found = []
    for proc in psutil.process_iter():
        try:
            token = proc.environ().get("WORKBENCH_SESSION")
            if token is not None and token_fragment in token and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_until(condition, timeout: float = 120.0, interval: float = 0.05, what: str = "condition") -> None:  # noqa: ANN001
    """Wait for a condition, never for a time: the deadline is only a backstop for a broken test."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
