"""Promise 7: stack dumps are safe. py-spy never leaves a target stopped (state T), whether it
times out or is killed; a dump that takes too long is abandoned with a message; without ptrace
rights the message says how to get them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from workbench.core.probes import stacks
from workbench.core.probes.stacks import PTRACE_HELP, dump_process, py_spy_path

pytestmark = pytest.mark.skipif(py_spy_path() is None, reason="py-spy not installed")

# Many busy threads: attaching stops each one, which widens the window a kill can land in.
BUSY = """
import threading
def spin():
    while True:
        sum(range(1000))
for _ in range(24):
    threading.Thread(target=spin, daemon=True).start()
print("up", flush=True)
threading.Event().wait()
"""


@pytest.fixture
def busy() -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def never_stopped(target: psutil.Process, seconds: float = 0.5) -> bool:
    """The target is not in state T now, nor at any look over the next moment."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if target.status() == psutil.STATUS_STOPPED:
            return False
        time.sleep(0.01)
    return True


def test_a_dump_that_times_out_is_abandoned_and_the_target_runs_on(busy: psutil.Process) -> None:
    abandoned = 0
    for timeout in (0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15) * 3:
        dump = dump_process(busy.pid, timeout=timeout)
        if not dump.ok:
            assert dump.error.startswith("abandoned after"), dump.error
            abandoned += 1
        assert never_stopped(busy, 0.1), f"left stopped after a {timeout} s timeout"
    assert abandoned > 0  # the short timeouts really cut py-spy off
    assert never_stopped(busy)
    assert dump_process(busy.pid, timeout=20).ok  # and the target can still be dumped


def _spies_of(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if p.name().startswith("py-spy") and str(pid) in p.cmdline()]


def test_a_py_spy_killed_mid_dump_does_not_leave_the_target_stopped(busy: psutil.Process) -> None:
    killed = 0
    for delay in (0.0, 0.005, 0.01, 0.02, 0.04) * 2:
        result: list = []
        worker = threading.Thread(target=lambda out=result: out.append(dump_process(busy.pid, timeout=20)))
        worker.start()
        deadline = time.monotonic() + 5
        spies: list[psutil.Process] = []
        while not spies and time.monotonic() < deadline:
            spies = _spies_of(busy.pid)
        time.sleep(delay)
        for spy in spies:
            try:
                spy.send_signal(signal.SIGKILL)
                killed += 1
            except psutil.Error:
                pass  # it finished first
        worker.join(timeout=30)
        assert result, "the dump never returned"
        assert never_stopped(busy, 0.2), f"left stopped after py-spy was killed {delay} s in"
    assert killed > 0


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                    reason="losing ptrace rights over a process needs root and setpriv to drop them")
def test_without_ptrace_rights_the_message_says_how_to_get_them(busy: psutil.Process, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # the real py-spy, run as `nobody`, may not trace a root process
    spy = tmp_path / "py-spy-as-nobody"
    spy.write_text(f"#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {py_spy_path()} \"$@\"\n")
    spy.chmod(0o755)
    monkeypatch.setattr(stacks, "py_spy_path", lambda: str(spy))
    dump = stacks.dump_process(busy.pid, timeout=20)
    assert not dump.ok and PTRACE_HELP in dump.error, dump.error
    for how in ("root", "CAP_SYS_PTRACE", "ptrace_scope", "--cap-add SYS_PTRACE"):
        assert how in dump.error
    assert never_stopped(busy)
