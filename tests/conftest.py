"""Shared fixtures: free ports, a private state dir, and a guard against leaked processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sessions go to a temp dir, never to the user's state dir."""
    path = tmp_path / "state"
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return path


def workbench(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
              input: str | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (the way a user does)."""
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )


def descendants_with_token(token_fragment: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if token_fragment in proc.environ().get("WORKBENCH_SESSION", "") and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail if a test leaves a supervised process (any WORKBENCH_SESSION holder) behind."""
    before = {p.pid for p in descendants_with_token("")}
    yield
    leaked = []
    for _ in range(50):
        leaked = [p for p in descendants_with_token("") if p.pid not in before]
        if not leaked:
            break
        import time

        time.sleep(0.1)
    for proc in leaked:
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not leaked, f"processes left behind: {[(p.pid, p.name()) for p in leaked]}"
