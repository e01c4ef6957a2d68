"""The client side of attach: find live sessions, connect, mirror the state, send commands.

A client holds what the events say (runs, phases, findings, dumps, the timeline); the log
lines themselves are read from the run's log file, whose path the `RunStarted` event gives.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.engine.events import (
    ActionTaken,
    FindingRaised,
    Message,
    PhaseChanged,
    ProcessExited,
    RunStarted,
    StacksDumped,
    Verdict,
    VerdictChanged,
    event_from_dict,
)
from workbench.core.remote.protocol import (
    ROLE_CONTROL,
    ROLE_WATCH,
    LineReader,
    ProtocolError,
    connectable,
    encode,
    hello,
    info_path,
    live_info,
    runtime_dir,
)


class AttachError(Exception):
    """Why a client cannot attach or act: one line for the user."""


@dataclass
class LiveSession:
    name: str
    socket: Path
    session_dir: Path
    pid: int
    started: float
    command: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_sessions(directory: Path | None = None) -> list[LiveSession]:
    """Sessions whose daemon answers on its socket, newest first. Leftovers of a daemon that
    died (SIGKILL, a reboot of the runtime dir's owner) are removed on the way."""
    directory = directory or runtime_dir()
    found = []
    for sock in sorted(directory.glob("*.sock")):
        info = live_info(sock) or {}
        if connectable(sock):
            found.append(LiveSession(str(info.get("session", sock.stem)), sock, Path(info.get("session_dir", "")),
                                     int(info.get("pid", 0)), float(info.get("started", 0.0)),
                                     str(info.get("command", ""))))
        elif not info.get("pid") or not _pid_alive(int(info["pid"])):
            for stale in (sock, info_path(sock)):
                try:
                    stale.unlink()
                except OSError:
                    pass
    return sorted(found, key=lambda s: -s.started)


def resolve_live(name: str | None, directory: Path | None = None) -> LiveSession:
    """A live session by name, unique prefix or session directory; with no name, the only one."""
    found = live_sessions(directory)
    if name is None:
        if len(found) == 1:
            return found[0]
        if not found:
            raise AttachError("no live session (start one with `workbench --detachable -- CMD`)")
        raise AttachError(f"{len(found)} live sessions: name one ({', '.join(s.name for s in found)})")
    matches = [s for s in found if name in (s.name, str(s.session_dir)) or s.name.startswith(name)
               or Path(name).name == s.name]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AttachError(f"no live session {name!r} (`workbench sessions` lists them)")
    raise AttachError(f"{name!r} matches {len(matches)} live sessions: be more specific")


@dataclass
class RunView:
    """A run as the events describe it."""

    id: str
    argv: list[str]
    env_delta: dict[str, str | None]
    pid: int
    log_path: str
    cause: str
    port: int | None = None
    phase: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    dumps: list[str] = field(default_factory=list)
    verdict: str | None = None
    exited: bool = False


@dataclass
class SessionState:
    """Everything a client knows about the session, rebuilt from the event stream."""

    runs: dict[str, RunView] = field(default_factory=dict)
    timeline: list[ActionTaken] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)

    def apply(self, event: Message) -> None:
        self.events.append(event)
        if isinstance(event, RunStarted):
            self.runs[event.run] = RunView(event.run, list(event.argv), dict(event.env_delta), event.pid,
                                           event.log_path, event.cause, event.port)
            return
        if isinstance(event, ActionTaken):
            self.timeline.append(event)
            return
        run = self.runs.get(getattr(event, "run", ""))
        if run is None:
            return
        if isinstance(event, PhaseChanged):
            run.phase = event.phase
        elif isinstance(event, FindingRaised):
            run.findings.append(event.finding)
        elif isinstance(event, StacksDumped):
            run.dumps.append(event.path)
        elif isinstance(event, (Verdict, VerdictChanged)):
            run.verdict = event.verdict
        elif isinstance(event, ProcessExited):
            run.exited = True

    def last_run(self) -> RunView | None:
        return next(reversed(self.runs.values()), None) if self.runs else None


class AttachClient:
    """One connection to a live session. Events are applied to `state` on a reader thread and
    passed to `on_event`; `request` sends a command and waits for its result."""

    def __init__(self, sock: Path, control: bool = False, who: dict[str, str] | None = None,
                 on_event: Callable[[Message], None] | None = None) -> None:
        self.path = Path(sock)
        self.role = ROLE_CONTROL if control else ROLE_WATCH
        self.who = who
        self.on_event = on_event
        self.state = SessionState()
        self.welcome: dict[str, Any] = {}
        self.synced = threading.Event()
        self.closed = threading.Event()
        self.bye_reason = ""
        self._sock: socket.socket | None = None
        self._pending: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def connect(self, timeout: float = 10.0) -> AttachClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise AttachError(f"cannot reach the session at {self.path}: {exc.strerror or exc}") from None
        reader = LineReader(sock)
        try:
            try:
                sock.sendall(encode(hello(self.role, self.who)))
            except (BrokenPipeError, ConnectionResetError):
                pass  # a server that refuses us says why and hangs up before reading: read the why
            first = reader.read()
        except (OSError, ProtocolError) as exc:
            sock.close()
            raise AttachError(f"the session at {self.path} did not answer: {exc}") from None
        if first is None:
            sock.close()
            raise AttachError(f"the session at {self.path} hung up without a word")
        if first.get("type") == "error":
            sock.close()
            raise AttachError(str(first.get("message", "refused")))
        if first.get("type") != "welcome":
            sock.close()
            raise AttachError(f"the session at {self.path} does not speak the attach protocol")
        sock.settimeout(None)
        self.welcome = first
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, args=(reader,), name="wb-attach-read", daemon=True)
        self._reader.start()
        return self

    @property
    def session_dir(self) -> Path:
        return Path(self.welcome.get("session_dir", ""))

    def _read_loop(self, reader: LineReader) -> None:
        try:
            while True:
                try:
                    message = reader.read()
                except ProtocolError:
                    break
                if message is None:
                    break
                kind = message.get("type")
                if kind == "event":
                    try:
                        event = event_from_dict(message.get("event") or {})
                    except (ValueError, TypeError):
                        continue  # an event kind this client does not know yet
                    if event.kind != "lines":
                        with self._state_lock:
                            self.state.apply(event)
                    if self.on_event is not None:
                        self.on_event(event)
                elif kind == "synced":
                    self.synced.set()
                elif kind == "result":
                    future = self._pending.pop(message.get("id"), None)
                    if future is not None:
                        future.set_result(message)
                elif kind == "bye":
                    self.bye_reason = str(message.get("reason", ""))
        finally:
            self.closed.set()
            self.synced.set()
            for future in list(self._pending.values()):
                if not future.done():
                    future.set_result({"ok": False, "error": "the session went away"})
            self._pending.clear()

    def _send(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._sock is None or self.closed.is_set():
            raise AttachError("not connected to the session")
        ident = next(self._ids)
        future: Future = Future()
        self._pending[ident] = future
        with self._lock:
            try:
                self._sock.sendall(encode({**message, "id": ident}))
            except OSError as exc:
                self._pending.pop(ident, None)
                raise AttachError(f"the session went away: {exc}") from None
        try:
            return future.result(timeout)
        except FutureTimeout:
            self._pending.pop(ident, None)
            raise AttachError(f"no answer from the session within {timeout:.0f} s") from None

    def request(self, command: Message, timeout: float = 120.0) -> Any:
        """Run an engine command in the session; its value, or AttachError with the refusal."""
        answer = self._send({"type": "command", "command": command.to_dict()}, timeout)
        if not answer.get("ok"):
            raise AttachError(str(answer.get("error", "refused")))
        return answer.get("value")

    def record_action(self, action: str, detail: str, run: str = "", timeout: float = 10.0) -> None:
        """Put a step that is not an engine command on the shared timeline (control clients)."""
        answer = self._send({"type": "action", "action": action, "detail": detail, "run": run}, timeout)
        if not answer.get("ok"):
            raise AttachError(str(answer.get("error", "refused")))

    def shutdown_session(self, timeout: float = 60.0) -> None:
        answer = self._send({"type": "shutdown"}, timeout)
        if not answer.get("ok"):
            raise AttachError(str(answer.get("error", "refused")))

    def snapshot(self) -> SessionState:
        with self._state_lock:
            return SessionState(dict(self.state.runs), list(self.state.timeline), list(self.state.events))

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)

    def __enter__(self) -> AttachClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
