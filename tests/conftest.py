"""Shared fixtures: free ports, a private state dir, and a guard against leaked processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import descendants_with_token, free_port


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


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail if a test leaves a supervised process (any WORKBENCH_SESSION holder) behind."""
    before = {p.pid for p in descendants_with_token("")}
    yield
    leaked: list[psutil.Process] = []
    for _ in range(50):
        leaked = [p for p in descendants_with_token("") if p.pid not in before]
        if not leaked:
            break
        time.sleep(0.1)
    for proc in leaked:
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not leaked, f"processes left behind: {[(p.pid, p.name()) for p in leaked]}"
