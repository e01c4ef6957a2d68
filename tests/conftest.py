"""Shared fixtures: free ports, a private state dir, and a guard against leaked processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import descendants_with_token, free_port

TEST_MARKER = "WORKBENCH_TEST_MARKER"
LEAK_BACKSTOP = 60.0


def _marked(proc: psutil.Process, marker: str) -> bool:
    try:
        return proc.environ().get(TEST_MARKER) == marker
    except psutil.Error:
        return False


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
def no_leaks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if a test leaves a supervised process behind. Everything the test starts inherits a
    marker variable, so processes of other workbenches on the machine are not counted."""
    marker = uuid.uuid4().hex
    monkeypatch.setenv(TEST_MARKER, marker)
    yield
    # processes on their way out (a reaper's last sweep) get a generous backstop to finish
    deadline = time.monotonic() + LEAK_BACKSTOP
    leaked = [p for p in descendants_with_token("") if _marked(p, marker)]
    while leaked and time.monotonic() < deadline:
        time.sleep(0.1)
        leaked = [p for p in descendants_with_token("") if _marked(p, marker)]
    for proc in leaked:
        try:
            proc.kill()
        except psutil.Error:
            pass
    assert not leaked, f"processes left behind: {[(p.pid, p.name()) for p in leaked]}"


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook signature
    """Say which real vLLM the end-to-end tests ran against."""
    from tests.real_vllm.conftest import VENV

    marker = VENV / ".workbench-ready"
    if marker.exists() and terminalreporter.stats.get("passed"):
        ran = [r for r in terminalreporter.stats["passed"] if "real_vllm" in r.nodeid]
        if ran:
            terminalreporter.write_line(f"real vLLM version: {marker.read_text().strip()} ({len(ran)} end-to-end tests passed)")
