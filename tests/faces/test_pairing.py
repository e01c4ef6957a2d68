"""Pairing end to end: real daemons, real sockets, real clients, the simulator as the server."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import workbench
from workbench.core.engine.events import Relaunch, Stop
from workbench.core.record.session import read_events
from workbench.core.remote.attach_client import AttachClient, AttachError, live_sessions

pytestmark = pytest.mark.usefixtures("no_leaks")


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private runtime dir; on the way out every session still live in it is stopped, and a
    daemon that does not answer is killed with its whole tree (its reaper sweeps the runs)."""
    path = tmp_path / "rt"
    monkeypatch.setenv("WORKBENCH_RUNTIME_DIR", str(path))
    yield path
    for live in live_sessions(path) if path.exists() else []:
        try:
            workbench("stop", live.name, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        _kill_tree(live.pid)


@pytest.fixture
def clients() -> Iterator[Callable[..., subprocess.Popen]]:
    """Client processes started by a test, killed at the end whatever happened."""
    started: list[subprocess.Popen] = []

    def start(*args: str, output: Path) -> subprocess.Popen:
        handle = open(output, "wb")  # noqa: SIM115 - the child owns it; closed below
        proc = subprocess.Popen([sys.executable, "-m", "workbench", *args], stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        handle.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=10)


def _sim(port: int) -> list[str]:
    return [sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port), "--time-scale", "0.05"]


def _start_detached(port: int) -> str:
    result = workbench("--detachable", "--detach", "--", *_sim(port), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _until(check: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _port_free(port: int) -> bool:
    """Nobody listens: a new server could bind it (TIME_WAIT of our own requests aside, as
    uvicorn binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _daemon_tree(name: str, runtime: Path) -> tuple[int, list[int]]:
    live = next(s for s in live_sessions(runtime) if s.name == name)
    return live.pid, [p.pid for p in psutil.Process(live.pid).children(recursive=True)]


def test_two_clients_relaunch_sighup_history_and_stop(runtime: Path, port: int, tmp_path: Path,
                                                      clients: Callable[..., subprocess.Popen]) -> None:
    name = _start_detached(port)
    live = next(s for s in live_sessions(runtime) if s.name == name)
    watcher = AttachClient(live.socket).connect()  # client B: read-only, in this process
    try:
        watcher.synced.wait(10)
        _until(lambda: (watcher.snapshot().runs.get("r1") or None) and watcher.snapshot().runs["r1"].verdict,
               what="r1's verdict")
        assert watcher.snapshot().runs["r1"].verdict == "healthy"

        # client A: a real process with --control relaunches with a debug variable toggled, then follows
        before = time.time()
        driver = clients("attach", name, "--control", "--do", "relaunch", "--env", "VLLM_LOGGING_LEVEL=DEBUG",
                         "--follow", output=tmp_path / "driver.out")

        def relaunched():
            state = watcher.snapshot()
            return state.runs.get("r2") and state.timeline and state.runs["r2"].verdict

        _until(relaunched, what="B to see the relaunch")
        state = watcher.snapshot()
        r2 = state.runs["r2"]
        assert r2.env_delta == {"VLLM_LOGGING_LEVEL": "DEBUG"} and r2.cause == "attach: relaunch"
        entry = state.timeline[-1]
        assert (entry.action, entry.detail, entry.run) == ("relaunch", "relaunch r1 with VLLM_LOGGING_LEVEL=DEBUG", "r1")
        assert entry.user == getpass.getuser() and entry.tty and entry.client == driver.pid
        assert before - 1 <= entry.time <= time.time()
        r2_log = Path(r2.log_path).read_text(errors="replace")  # B reads the log by the path the event gave
        assert "DEBUG" in r2_log and "Application startup complete" in r2_log
        assert state.runs["r1"].exited
        _until(lambda: b"relaunch r1: ok" in (tmp_path / "driver.out").read_bytes(), what="A's answer")

        # A's terminal drops: SIGHUP. A goes, the run lives on.
        r2_pid = r2.pid
        driver.send_signal(signal.SIGHUP)
        assert driver.wait(timeout=10) == 0
        time.sleep(0.5)
        assert psutil.pid_exists(r2_pid) and psutil.Process(r2_pid).status() != psutil.STATUS_ZOMBIE
        assert _serving(port)
        assert not watcher.closed.is_set()

        # B is read-only: its control command is refused, in-process and from the CLI
        with pytest.raises(AttachError, match="read-only"):
            watcher.request(Stop("r2"), timeout=10)
        refused = workbench("attach", name, "--do", "stop")
        assert refused.returncode == 2 and "read-only" in refused.stderr and "Traceback" not in refused.stderr
        assert _serving(port)
    finally:
        watcher.close()

    # a new client attaches and sees the full history: both logs, phases, verdicts, the timeline entry
    late = workbench("attach", name, "--history", "--lines", "1000")
    assert late.returncode == 0, late.stderr
    out = late.stdout
    assert "== r1 (healthy)" in out and "== r2 (healthy)" in out
    assert "[r1] " in out and "[r2] " in out and "Application startup complete" in out
    assert f"▶ {getpass.getuser()}@" in out and ": relaunch r1 with VLLM_LOGGING_LEVEL=DEBUG" in out
    assert "r2 verdict: healthy" in out and "r2 phase: serving" in out
    listed = workbench("sessions")
    assert any(line.startswith(name) and " live " in line and "r2:healthy" in line
               for line in listed.stdout.splitlines()), listed.stdout  # verdicts from events: no summary yet

    # stop: the runs, the reaper and the daemon are gone, the port is free, the timeline kept
    daemon, tree = _daemon_tree(name, runtime)
    assert len(tree) >= 3  # at least the reaper, r2 and its pump
    stopped = workbench("stop", name, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert not psutil.pid_exists(daemon) or psutil.Process(daemon).status() == psutil.STATUS_ZOMBIE
    left = [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert _port_free(port)
    assert live_sessions(runtime) == [] and list(runtime.iterdir()) == []
    events = read_events(live.session_dir)
    actions = [(e["action"], e["user"]) for e in events if e["kind"] == "action"]
    assert actions == [("relaunch", getpass.getuser()), ("shutdown", getpass.getuser())]
    assert "live" not in workbench("sessions").stdout.split(name, 1)[1].splitlines()[0]


def test_the_owner_face_survives_nothing_but_the_runs_do(runtime: Path, port: int, tmp_path: Path,
                                                        clients: Callable[..., subprocess.Popen]) -> None:
    """`workbench run --headless --detachable`: the face that started the session is killed with
    SIGHUP (the SSH connection dropped); the daemon and the run carry on."""
    owner = clients("run", "--headless", "--detachable", "--", *_sim(port), output=tmp_path / "owner.out")
    _until(lambda: _serving(port), what="the server to come up")
    _until(lambda: b"verdict: healthy" in (tmp_path / "owner.out").read_bytes(), what="the owner's view")
    (live,) = live_sessions(runtime)
    owner.send_signal(signal.SIGHUP)
    assert owner.wait(timeout=10) == 0
    time.sleep(0.5)
    assert _serving(port) and psutil.pid_exists(live.pid)
    started = [e for e in read_events(live.session_dir) if e["kind"] == "run_started"]
    assert [e["run"] for e in started] == ["r1"]
    with AttachClient(live.socket, control=True).connect() as again:
        again.synced.wait(10)
        assert again.snapshot().runs["r1"].verdict == "healthy"
        assert again.request(Relaunch("r1", env_delta={"X": "1"}), timeout=60) == {"run": "r2"}
    assert workbench("stop", timeout=60).returncode == 0  # just one live session: no name needed
    assert _port_free(port) and not psutil.pid_exists(live.pid)


def test_default_sessions_still_stop_their_runs(runtime: Path, port: int) -> None:
    """Not detachable: the face's end is the runs' end, and nothing is served."""
    result = workbench("run", "--headless", "--stop-after", "0.2", "--", *_sim(port), timeout=60)
    assert result.returncode == 0, result.stderr
    assert _port_free(port)
    assert not runtime.exists() or live_sessions(runtime) == []


def test_events_of_a_detached_session_are_plain_json_lines(runtime: Path, port: int) -> None:
    name = _start_detached(port)
    (live,) = live_sessions(runtime)
    assert live.name == name
    assert workbench("stop", name, timeout=60).returncode == 0
    for line in (live.session_dir / "events.jsonl").read_text().splitlines():
        json.loads(line)
    assert (live.session_dir / "daemon.log").exists()
    assert os.stat(live.session_dir / "daemon.log").st_mode & 0o777 == 0o600


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_tui_in_a_terminal_that_dies_and_a_tui_that_attaches_again(runtime: Path, port: int, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`workbench --detachable -- CMD` in tmux; the tmux server is killed (every pane gets SIGHUP);
    the server keeps serving; `workbench attach` in a new terminal shows the run again."""
    sock = f"wb-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "WORKBENCH_STATE_DIR": str(tmp_path / "state"), "WORKBENCH_RUNTIME_DIR": str(runtime)}

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, env=env).stdout

    def screen_with(text: str) -> str:
        return str(_until(lambda: (s := tmux("capture-pane", "-p", "-t", "pair")) and text in s and s,
                          timeout=40, what=f"{text!r} on screen"))

    command = " ".join([sys.executable, "-m", "workbench", "--detachable", "--", *_sim(port)])
    try:
        tmux("new-session", "-d", "-s", "pair", "-x", "160", "-y", "45", command)
        screen_with("verdict healthy")
        tmux("kill-server")
        time.sleep(1.0)
        assert _serving(port)
        (live,) = live_sessions(runtime)
        tmux("new-session", "-d", "-s", "pair", "-x", "160", "-y", "45",
             f"{sys.executable} -m workbench attach; echo ATTACH-EXITED; sleep 30")
        screen_with("verdict healthy")  # from the session's events
        tmux("send-keys", "-t", "pair", "g")  # the top of the log, read back from the session's file
        screen_with("vLLM API server version")
        tmux("send-keys", "-t", "pair", "q")
        screen_with("ATTACH-EXITED")
        assert _serving(port)
    finally:
        tmux("kill-server")
    assert workbench("stop", live.name, timeout=60).returncode == 0
    assert _port_free(port)


def test_a_daemon_killed_outright_takes_its_runs_with_it(runtime: Path, port: int) -> None:
    """SIGKILL leaves the daemon no time to stop anything: its reaper sweeps the runs."""
    name = _start_detached(port)
    _until(lambda: _serving(port), what="the server")
    daemon, tree = _daemon_tree(name, runtime)
    os.kill(daemon, signal.SIGKILL)
    _until(lambda: not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in tree),
           timeout=30, what="the runs and the reaper to go")
    assert _port_free(port)
    result = workbench("attach", name)
    assert result.returncode == 2 and result.stderr.strip() == f"workbench: no live session {name!r} (`workbench sessions` lists them)"
