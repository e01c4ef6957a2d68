"""Promise 1: no orphans. Whatever way the workbench ends, no process of a supervised tree
survives and the server's port is free again.

The tree (see `children.TREE`): a root that listens on the port and ignores SIGTERM, its child
(ignores SIGTERM), and a grandchild that calls setsid() — it leaves the process group and the
session — ignores SIGTERM and holds the listening socket too. Every process the test starts
carries a fresh marker variable, so "nothing survives" also covers the workbench's own helpers
(the reaper, the pump).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ptyprocess import PtyProcess

from tests.helpers import free_port
from tests.reliability.children import (
    BACKSTOP,
    MARKER,
    TREE,
    kill_marked,
    marked,
    port_free,
    wait_until,
    write_script,
)
from workbench.core.engine.engine import Engine
from workbench.core.engine.settings import Settings
from workbench.core.process.procs import default_signals
from workbench.core.record.session import Session

# A backstop, not a promise about speed: cleanup takes about 3 s (the reaper's SIGTERM grace)
# to 11 s; the deadline only has to tell "never" from "slowly, on a busy machine"
CLEANUP_BOUND = 90.0


def tree_up(marker: str) -> bool:
    """Root, child and setsid() grandchild are all running."""
    roles = set()
    for proc in marked(marker):
        try:
            cmd = proc.cmdline()
        except Exception:  # noqa: BLE001 - gone meanwhile
            continue
        if any(arg.endswith("tree.py") for arg in cmd):
            roles.add("grandchild" if "grandchild" in cmd else "child" if "child" in cmd else "root")
    return roles >= {"root", "child", "grandchild"}


def assert_all_gone(marker: str, port: int, since: float) -> float:
    gone = wait_until(lambda: not marked(marker) and port_free(port), CLEANUP_BOUND)
    left = [(p.pid, p.name()) for p in marked(marker)]
    assert gone, f"survivors: {left}; port {port} free: {port_free(port)}"
    return time.monotonic() - since


SCREEN_KEEP = 256 * 1024  # the tail of what the TUI drew, enough to find the child's output in


class Tui:
    """The real TUI in a pty, its screen drained by a thread (as a terminal would).

    It starts with default signal dispositions whatever the test runner ignores (a suite run
    from a script in the background has SIGINT ignored, under nohup SIGHUP too)."""

    def __init__(self, argv: list[str], env: dict[str, str], preexec: Callable[[], None] = default_signals) -> None:
        self.proc = PtyProcess.spawn(argv, env=env, dimensions=(40, 140), preexec_fn=preexec)
        self.screen = bytearray()
        self._hang_up = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        fd = self.proc.fd
        while not self._hang_up.is_set():
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the TUI and everything on its terminal are gone
                return
            if not data:
                return
            self.screen += data
            del self.screen[:-SCREEN_KEEP]

    def shows(self, text: bytes) -> bool:
        return text in self.screen

    def hang_up(self) -> None:
        """Close the terminal's master side, as a terminal emulator or sshd does when it goes
        away: the kernel sends SIGHUP. The drain thread lets go of the fd first — a read in
        progress would keep the master open."""
        self._hang_up.set()
        self._thread.join()
        self.proc.fileobj.close()
        self.proc.closed = True  # ptyprocess must not close (and signal) it again


@pytest.mark.parametrize("how", ["exit", "SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_headless_cli_leaves_nothing(tmp_path: Path, how: str, no_leaks) -> None:
    """`run --headless`: the command ends by itself (its setsid() grandchild does not), or the
    workbench gets Ctrl-C, SIGTERM, SIGHUP (the SSH session drops) or SIGKILL."""
    marker, port = uuid.uuid4().hex, free_port()
    tree = write_script(tmp_path, "tree.py", TREE)
    go = tmp_path / "go"  # with "exit": the root leaves once this exists
    argv = [sys.executable, "-m", "workbench", "run", "--headless", "--no-smoke", "--session-dir", str(tmp_path / "s"),
            "--", sys.executable, str(tree), str(port), *(["exit", str(go)] if how == "exit" else [])]
    wb = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          env={**os.environ, MARKER: marker})
    try:
        assert wait_until(lambda: tree_up(marker), BACKSTOP), "the tree never came up"
        assert not port_free(port)
        if how == "exit":
            go.touch()
        else:
            wb.send_signal(getattr(signal, how))
        since = time.monotonic()
        code = wb.wait(timeout=60)
        took = assert_all_gone(marker, port, since)
        stderr = wb.stderr.read().decode(errors="replace")
        assert "Traceback" not in stderr
        if how == "SIGKILL":
            assert code == -signal.SIGKILL
        else:
            assert code != 0 or how == "exit"
        print(f"headless/{how}: clean in {took:.1f} s")
    finally:
        wb.kill()
        kill_marked(marker)


def _like_nohup() -> None:
    """What `nohup workbench ... &` from a script gives the workbench: SIGHUP and SIGINT ignored."""
    default_signals()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("how", ["q", "SIGTERM", "SIGHUP", "hangup", "SIGKILL", "hangup-under-nohup"])
def test_tui_leaves_nothing(tmp_path: Path, how: str, no_leaks) -> None:
    """The TUI: quit with its key, SIGTERM, SIGHUP, its terminal closing under it (what an
    SSH drop does), SIGKILL; and the terminal closing under a TUI started with nohup, which
    used to live on unseen with its servers."""
    marker, port = uuid.uuid4().hex, free_port()
    tree = write_script(tmp_path, "tree.py", TREE)
    tui = Tui([sys.executable, "-m", "workbench", "--", sys.executable, str(tree), str(port)],
              {**os.environ, MARKER: marker}, _like_nohup if how == "hangup-under-nohup" else default_signals)
    try:
        assert wait_until(lambda: tree_up(marker), BACKSTOP), "the tree never came up"
        # the child's first line on screen: the app is drawn and its event loop takes keys
        assert wait_until(lambda: tui.shows(b"root up"), BACKSTOP), "the TUI never showed the child's output"
        if how == "q":
            tui.proc.write(b"q")
        elif how.startswith("hangup"):
            tui.hang_up()
        else:
            os.kill(tui.proc.pid, getattr(signal, how))
        since = time.monotonic()
        took = assert_all_gone(marker, port, since)
        print(f"tui/{how}: clean in {took:.1f} s")
    finally:
        if tui.proc.isalive():
            tui.proc.kill(signal.SIGKILL)
        kill_marked(marker)


@pytest.mark.parametrize("what", ["stop-new", "shutdown-0", "shutdown-0.05", "shutdown-0.3", "stop-old-concurrently",
                                  "shutdown-while-the-old-stops"])
def test_stop_in_the_middle_of_a_relaunch(tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch, no_leaks) -> None:
    """Engine level: a relaunch (stop the old tree, start a new one) races a stop or the
    engine's shutdown. Nothing may survive the shutdown, and the port must be free."""
    marker, port = uuid.uuid4().hex, free_port()
    monkeypatch.setenv(MARKER, marker)
    tree = write_script(tmp_path, "tree.py", TREE)
    engine = Engine(Session(tmp_path / "s"), settings=Settings(stop_int_timeout=3, stop_term_timeout=2))
    errors: list[BaseException] = []
    try:
        first = engine.launch([sys.executable, str(tree), str(port)])
        assert wait_until(lambda: tree_up(marker), BACKSTOP)

        def relaunch() -> None:
            try:
                engine.relaunch(first.id, cause="test")
            except (RuntimeError, KeyError) as exc:  # refused because the engine closed: fine
                errors.append(exc)

        worker = threading.Thread(target=relaunch)
        worker.start()
        if what == "stop-new":
            worker.join(30)
            second = engine.runs.get("r2")
            assert second is not None
            engine.stop(second.id)
        elif what == "stop-old-concurrently":
            engine.stop(first.id)
            worker.join(30)
        elif what == "shutdown-while-the-old-stops":
            # the relaunch has begun stopping the old tree; its launch of the new one comes
            # after or during the shutdown and must be refused, not start a tree nobody stops
            assert wait_until(lambda: first.stopping, BACKSTOP)
        else:
            time.sleep(float(what.split("-")[1]))
        since = time.monotonic()
        engine.shutdown()
        worker.join(60)
        assert not worker.is_alive()
        took = assert_all_gone(marker, port, since)
        if what == "shutdown-while-the-old-stops":
            # refused, or (when the old tree went faster than this thread woke) launched
            # before the shutdown began and stopped by it: never a tree left running
            if errors:
                assert [type(e) for e in errors] == [RuntimeError], errors
            else:
                assert "r2" in engine.runs and not engine.runs["r2"].alive
        print(f"relaunch/{what}: clean in {took:.1f} s ({errors or 'no error'})")
    finally:
        engine.shutdown()
        kill_marked(marker)
