"""Promise 2: no lost output. The run's raw log is byte-identical to what the child wrote.

The child's pty has output post-processing off (no `\n` -> `\r\n`), so "byte-identical" is
exact: the sha256 of `runs/<id>/output.log` equals the sha256 of the bytes the child passed to
write(2), including invalid UTF-8, NULs, escape sequences and an unfinished last line.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from tests.reliability.children import (
    BACKSTOP,
    MARKER,
    WRITER,
    kill_marked,
    marked,
    nasty_stream,
    session_logs,
    wait_until,
    write_script,
)
from workbench.core.engine.engine import Engine
from workbench.core.record.session import Session

SIZE = 4 * 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _setup(tmp_path: Path, size: int = SIZE) -> tuple[bytes, Path, Path, Path]:
    data = nasty_stream(size)
    source = tmp_path / "stream.bin"
    source.write_bytes(data)
    return data, source, tmp_path / "count", write_script(tmp_path, "writer.py", WRITER)


def _env(marker: str) -> dict[str, str]:
    return {**os.environ, MARKER: marker}


def test_engine_log_is_byte_identical_after_the_child_dies_mid_line(tmp_path, no_leaks) -> None:
    data, source, count, writer = _setup(tmp_path)
    engine = Engine(Session(tmp_path / "session"))
    try:
        run = engine.launch([sys.executable, str(writer), str(source), str(count)])
        assert run.reader_done.wait(BACKSTOP), "the reader never finished"
        logged = run.store.path.read_bytes()
        assert len(logged) == len(data)
        assert sha(logged) == sha(data)
        assert run.store.bytes_written == len(data)  # and the tail reader saw every byte too
    finally:
        engine.shutdown()


def test_headless_cli_log_is_byte_identical(tmp_path, no_leaks) -> None:
    data, source, count, writer = _setup(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "run", "--headless", "--quiet", "--no-smoke",
         "--session-dir", str(tmp_path / "session"), "--", sys.executable, str(writer), str(source), str(count)],
        capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert out.returncode != 0  # the child died of SIGKILL
    assert "Traceback" not in out.stderr.decode(errors="replace")
    logged = (tmp_path / "session" / "runs" / "r1" / "output.log").read_bytes()
    assert sha(logged) == sha(data), f"{len(logged)} bytes logged, {len(data)} written"


def test_tui_log_is_byte_identical_while_the_ui_is_stalled(tmp_path, state_dir, no_leaks) -> None:
    """The TUI in a real pty whose screen nobody reads: the UI blocks on its own terminal, the
    pump keeps copying the child to disk."""
    marker = uuid.uuid4().hex
    data, source, count, writer = _setup(tmp_path)
    tui = PtyProcess.spawn([sys.executable, "-m", "workbench", "--", sys.executable, str(writer), str(source), str(count)],
                           env=_env(marker), dimensions=(40, 120))
    try:
        assert wait_until(lambda: bool(session_logs(state_dir)), BACKSTOP)
        log = session_logs(state_dir)[0]
        assert wait_until(lambda: log.stat().st_size >= len(data), BACKSTOP, step=0.2), (
            f"{log.stat().st_size} of {len(data)} bytes on disk with the UI stalled")
        # now let the UI draw and quit it
        drained = []
        deadline = time.monotonic() + 60
        tui.write(b"q")
        while tui.isalive() and time.monotonic() < deadline:
            try:
                drained.append(tui.read(65536))
            except EOFError:
                break
        assert sha(log.read_bytes()) == sha(data)
    finally:
        if tui.isalive():
            tui.kill(signal.SIGKILL)
        assert wait_until(lambda: not marked(marker), BACKSTOP)
        kill_marked(marker)


def test_sigkill_of_the_workbench_mid_stream_keeps_everything_written(tmp_path, no_leaks) -> None:
    """Everything the child wrote before it was taken down is on disk, even though the
    workbench died first: the pump outlives it and drains the pty."""
    marker = uuid.uuid4().hex
    data, source, count, writer = _setup(tmp_path)
    session = tmp_path / "session"
    wb = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "--headless", "--quiet", "--no-smoke", "--session-dir", str(session),
         "--", sys.executable, str(writer), str(source), str(count), "linger"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=_env(marker),
    )
    try:
        written = lambda: int(count.read_text() or 0) if count.exists() else 0  # noqa: E731
        assert wait_until(lambda: written() > len(data) // 2 + 100_000, BACKSTOP, step=0.01)
        wb.kill()
        wb.wait()
        assert wait_until(lambda: not marked(marker), BACKSTOP), "the reaper did not clean up"
        logged = (session / "runs" / "r1" / "output.log").read_bytes()
        at_end = written()
        assert len(logged) >= at_end, f"{at_end - len(logged)} bytes written by the child are not on disk"
        assert logged == data[: len(logged)]
    finally:
        wb.kill()
        kill_marked(marker)


@pytest.mark.parametrize("size", [0, 1])
def test_tiny_outputs(tmp_path, size: int, no_leaks) -> None:
    data = b"x" * size
    engine = Engine(Session(tmp_path / "session"))
    try:
        run = engine.launch([sys.executable, "-c", f"import os; os.write(1, {data!r})"])
        assert run.reader_done.wait(BACKSTOP)
        assert run.store.path.read_bytes() == data
    finally:
        engine.shutdown()


def _first_difference(got: bytes, expected: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))
    return f"{len(got)} bytes logged, {len(expected)} expected; first difference at {at}: {got[max(at - 40, 0):at + 40]!r}"


GOODBYE = r"""
import os, signal, time
def bye(*_):
    data = b"".join(b"shutdown line %06d\n" % i for i in range(20000))
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]
    os._exit(0)
signal.signal(signal.SIGINT, bye)
os.write(1, b"up\n")
time.sleep(600)
"""


def test_what_the_child_prints_while_being_stopped_is_kept(tmp_path, no_leaks) -> None:
    """A stop signals the whole tree; the pump must not be part of it, or the server's last
    words (a shutdown traceback) are lost — 420 kB of them here, more than a pty buffers."""
    engine = Engine(Session(tmp_path / "session"))
    try:
        run = engine.launch([sys.executable, "-c", GOODBYE])
        assert wait_until(lambda: run.store.path.stat().st_size >= 3, BACKSTOP, step=0.02)
        used, survivors = engine.stop(run.id)
        assert (used, survivors) == ("SIGINT", [])
        assert run.reader_done.wait(BACKSTOP)
        expected = b"up\n" + b"".join(b"shutdown line %06d\n" % i for i in range(20000))
        logged = run.store.path.read_bytes()
        assert sha(logged) == sha(expected), _first_difference(logged, expected)
        assert len(run.store) == 20001
    finally:
        engine.shutdown()
