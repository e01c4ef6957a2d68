"""The real program in a real terminal: `workbench demo` in tmux, driven by send-keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.helpers import descendants_with_token

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(socket: str) -> str:
    return subprocess.run(["tmux", "-L", socket, "capture-pane", "-p", "-t", "demo"], capture_output=True, text=True).stdout


def wait_screen(socket: str, text: str, timeout: float = 120.0) -> str:  # a backstop
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(socket)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never appeared on screen:\n{screen}")


def test_demo_in_tmux_reaches_ready_dumps_and_quits_clean(tmp_path, no_leaks) -> None:
    socket = f"wb-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m workbench demo; echo DEMO-EXITED; sleep 30"
    env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp_path / "state")}
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", "demo", "-x", "160", "-y", "45", command],
                   check=True, env=env)
    try:
        wait_screen(socket, "verdict healthy")
        wait_screen(socket, " API ")  # the API server's lines in the log, whatever has scrolled by
        wait_screen(socket, "serving")
        subprocess.run(["tmux", "-L", socket, "send-keys", "-t", "demo", "d"], check=True)
        wait_screen(socket, "stacks dumped")
        subprocess.run(["tmux", "-L", socket, "send-keys", "-t", "demo", "q"], check=True)
        wait_screen(socket, "DEMO-EXITED")
        assert descendants_with_token("") == [] or all(
            p.environ().get("WORKBENCH_STATE_DIR") != str(tmp_path / "state") for p in descendants_with_token("")
        )
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
