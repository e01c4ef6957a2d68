"""The attach transport on its own: who may connect, which protocol, what the timeline says."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import workbench
from workbench.core.engine.engine import Engine
from workbench.core.engine.events import ActionTaken, DumpStacks, Relaunch, Stop, event_from_dict
from workbench.core.knowledge.signatures import KnowledgeBase
from workbench.core.record.session import Session, read_events
from workbench.core.remote.attach_client import AttachClient, AttachError, live_sessions
from workbench.core.remote.attach_server import AttachServer, describe_command
from workbench.core.remote.protocol import (
    PROTOCOL_VERSION,
    LineReader,
    Peer,
    check_hello,
    check_peer,
    encode,
    hello,
    runtime_dir,
    socket_path,
)

NOBODY = 65534


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "rt"
    monkeypatch.setenv("WORKBENCH_RUNTIME_DIR", str(path))
    return runtime_dir()


def _server(tmp_path: Path, sock: Path, allowed_uid: int | None = None) -> Iterator[AttachServer]:
    engine = Engine(Session(tmp_path / "session"), KnowledgeBase([], [], []), reaper=False)
    server = AttachServer(engine, sock, allowed_uid=allowed_uid)
    server.start()
    try:
        yield server
    finally:
        server.close()
        engine.shutdown()


@pytest.fixture
def server(tmp_path: Path, runtime: Path) -> Iterator[AttachServer]:
    yield from _server(tmp_path, socket_path("unit", runtime))


def test_runtime_dir_and_socket_are_private(server: AttachServer, runtime: Path) -> None:
    assert runtime.stat().st_mode & 0o777 == 0o700
    assert server.path.parent == runtime
    assert server.path.stat().st_mode & 0o777 == 0o600


def test_long_session_names_get_a_short_socket(runtime: Path) -> None:
    path = socket_path("x" * 200, runtime)
    assert len(os.fsencode(path)) <= 100 and path.suffix == ".sock"


def test_credential_check_refuses_another_uid() -> None:
    assert check_peer(Peer(pid=1, uid=os.getuid(), gid=0), os.getuid()) is None
    refusal = check_peer(Peer(pid=1, uid=os.getuid() + 1, gid=0), os.getuid())
    assert refusal is not None and "refused" in refusal and str(os.getuid() + 1) in refusal


def test_server_refuses_a_peer_whose_uid_is_not_the_owner(tmp_path: Path, runtime: Path) -> None:
    # the test machine cannot switch users for every run: pretend the owner is someone else
    for server in _server(tmp_path, socket_path("other", runtime), allowed_uid=os.getuid() + 1):
        with pytest.raises(AttachError, match=f"uid {os.getuid()} is not the owner"):
            AttachClient(server.path, control=True).connect()
        assert server.clients == []


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another uid needs root")
def test_a_process_of_another_user_is_refused_by_so_peercred(tmp_path: Path) -> None:
    """A real second user: the directory and file modes are loosened on purpose so that only the
    credential check stands between them and the session."""
    open_dir = Path(tempfile.mkdtemp(prefix="wb-peer-"))
    try:
        os.chmod(open_dir, 0o755)
        for server in _server(tmp_path, open_dir / "s.sock"):
            os.chmod(server.path, 0o666)
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child becomes nobody and tries to attach
                try:
                    os.close(read_end)
                    os.setgroups([])
                    os.setgid(NOBODY)
                    os.setuid(NOBODY)
                    try:
                        AttachClient(server.path, control=True).connect()
                        answer = "attached"
                    except AttachError as exc:
                        answer = str(exc)
                    os.write(write_end, answer.encode())
                finally:
                    os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end, "rb") as handle:
                answer = handle.read().decode()
            os.waitpid(pid, 0)
            assert answer.startswith(f"refused: uid {NOBODY} is not the owner"), answer
            assert server.clients == []
    finally:
        for child in open_dir.iterdir():
            child.unlink()
        open_dir.rmdir()


def test_hello_checks_the_protocol_version() -> None:
    assert check_hello(hello("watch", {"user": "a", "tty": "-"})) is None
    refusal = check_hello({"type": "hello", "protocol": PROTOCOL_VERSION + 1, "role": "watch"})
    assert refusal is not None and f"protocol version {PROTOCOL_VERSION + 1}" in refusal
    assert check_hello({"type": "command"}) is not None
    assert check_hello({"type": "hello", "protocol": PROTOCOL_VERSION, "role": "admin"}) is not None


def test_server_refuses_a_mismatched_version_with_a_clear_message(server: AttachServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(server.path))
        sock.sendall(encode({**hello("control", {"user": "a", "tty": "-"}), "protocol": 99}))
        answer = LineReader(sock).read()
    assert answer is not None and answer["type"] == "error"
    assert "protocol version 99 is not supported" in answer["message"]
    assert server.clients == []


def test_read_only_client_is_refused_and_control_actions_are_on_the_timeline(server: AttachServer) -> None:
    watcher = AttachClient(server.path, who={"user": "bob", "tty": "pts/9"}).connect()
    driver = AttachClient(server.path, control=True, who={"user": "alice", "tty": "pts/3"}).connect()
    try:
        with pytest.raises(AttachError, match="read-only"):
            watcher.request(DumpStacks("r1"), timeout=10)
        with pytest.raises(AttachError, match="no run 'r7'"):
            driver.request(Stop("r7"), timeout=10)  # allowed, recorded, and answered with the error
        with pytest.raises(AttachError, match="read-only"):
            watcher.record_action("env", "toggle X=1")
        with pytest.raises(AttachError, match="unknown action"):
            driver.record_action("format-disk", "no")
        assert _flush(server)
        events = read_events(server.engine.session.dir)
        actions = [event_from_dict(e) for e in events if e["kind"] == "action"]
        assert [(a.user, a.tty, a.action, a.detail) for a in actions] == [("alice", "pts/3", "stop", "stop r7")]
        presence = [e for e in events if e["kind"] == "client"]
        assert {(e["user"], e["role"]) for e in presence} == {("bob", "watch"), ("alice", "control")}
    finally:
        watcher.close()
        driver.close()


def _flush(server: AttachServer) -> bool:
    """Wait until the session writer has caught up with the bus (it writes from a thread)."""
    import time

    deadline = time.monotonic() + 5
    path = server.engine.session.dir / "events.jsonl"
    while time.monotonic() < deadline:
        if '"action"' in path.read_text():
            return True
        time.sleep(0.05)
    return False


def test_describe_command_names_the_toggled_variable() -> None:
    action, detail = describe_command(Relaunch("r1", env_delta={"VLLM_LOGGING_LEVEL": "DEBUG", "OLD": None},
                                               arg_delta={"--enforce-eager": True}))
    assert action == "relaunch"
    assert detail == "relaunch r1 with -OLD VLLM_LOGGING_LEVEL=DEBUG --enforce-eager"
    assert describe_command(Stop("r2", kill=True)) == ("kill", "kill r2")
    event = ActionTaken("r1", action=action, detail=detail, user="u", tty="pts/1")
    assert event_from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_a_dead_socket_is_a_clear_message_and_is_cleaned_up(runtime: Path) -> None:
    stale = runtime / "20260101-000000-dead-0000.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # bound, never listening, then closed: a daemon that died
    (runtime / "20260101-000000-dead-0000.json").write_text(json.dumps({"pid": 2**22 + 12345}))
    result = workbench("attach", "20260101-000000-dead")
    assert result.returncode == 2
    assert result.stderr.strip() == "workbench: no live session '20260101-000000-dead' (`workbench sessions` lists them)"
    assert "Traceback" not in result.stderr
    assert live_sessions(runtime) == [] and not stale.exists()


def test_cli_without_a_live_session_says_so(runtime: Path) -> None:
    for args in (("attach",), ("stop",), ("attach", "--control", "--do", "relaunch")):
        result = workbench(*args)
        assert result.returncode == 2, args
        assert result.stderr.strip() == "workbench: no live session (start one with `workbench --detachable -- CMD`)"
