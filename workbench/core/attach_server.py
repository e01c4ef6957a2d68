"""The engine of a detachable session, served to attach clients over a Unix socket.

`python -m workbench.core.attach_server` is the daemon: it reads its launch spec as JSON on
stdin, forks once more (so it is nobody's child and in no terminal's session), starts the
engine and the command, and serves clients until `workbench stop` (or SIGTERM). Its stdout and
stderr go to `daemon.log` in the session directory.

Every command a client sends is first published as an `ActionTaken` event (who, from which
tty, what), so the shared timeline lands in `events.jsonl` and in every client's view.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .engine import Engine
from .events import (
    ActionTaken,
    ClientPresence,
    DumpStacks,
    Launch,
    Message,
    Relaunch,
    Smoke,
    Stop,
    command_from_dict,
)
from .protocol import (
    PROTOCOL_VERSION,
    ROLE_CONTROL,
    LineReader,
    ProtocolError,
    check_hello,
    check_peer,
    encode,
    info_path,
    peer_credentials,
    write_live_info,
)

CLIENT_QUEUE = 20_000  # messages a slow client may lag behind before it is dropped
# Line-count events stay in the daemon: clients read the logs from the files, and sending one per
# batch to every client during a flood would only cost the engine's process CPU.
NOT_SENT = {"lines"}
CLIENT_ACTIONS = {"env"}  # timeline entries a control client may add without an engine command


class _Client:
    """One connection: a writer thread drains its queue so the bus never waits on a socket."""

    def __init__(self, conn: socket.socket, pid: int, user: str, tty: str, role: str) -> None:
        self.conn = conn
        self.pid = pid
        self.user = user
        self.tty = tty
        self.role = role
        self.queue: queue.Queue[bytes | None] = queue.Queue(CLIENT_QUEUE)
        self.closed = False
        self._writer = threading.Thread(target=self._write_loop, name=f"wb-attach-w{pid}", daemon=True)

    def start(self) -> None:
        self._writer.start()

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(encode(message))
        except queue.Full:  # a client that stopped reading must not hold the engine's memory
            self.close()

    def _write_loop(self) -> None:
        while True:
            data = self.queue.get()
            if data is None:
                break
            try:
                self.conn.sendall(data)
            except OSError:
                break
        self.closed = True
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        """Flush what is queued, then hang up."""
        if self.closed:
            return
        self.closed = True
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join(self, timeout: float) -> None:
        if self._writer.is_alive():
            self._writer.join(timeout)


def describe_command(command: Message) -> tuple[str, str]:
    """(action, detail) of a command for the timeline, in the words a pair would use."""
    if isinstance(command, Relaunch):
        parts = [f"{k}={v}" if v is not None else f"-{k}" for k, v in sorted(command.env_delta.items())]
        parts += [f"{k} {v}" if not isinstance(v, bool) else (k if v else f"no {k}")
                  for k, v in sorted(command.arg_delta.items())]
        return "relaunch", f"relaunch {command.run}" + (f" with {' '.join(parts)}" if parts else "")
    if isinstance(command, Stop):
        return ("kill", f"kill {command.run}") if command.kill else ("stop", f"stop {command.run}")
    if isinstance(command, DumpStacks):
        return "dump", f"dump the stacks of {command.run}"
    if isinstance(command, Smoke):
        return "smoke", f"smoke request to {command.run}"
    if isinstance(command, Launch):
        return "launch", "launch " + " ".join(command.argv)[:200]
    return command.kind, command.kind


def _result_value(value: object) -> Any:
    if hasattr(value, "id") and hasattr(value, "spec"):  # a Run
        return {"run": value.id}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return {"count": len(value)}
    return value


class AttachServer:
    def __init__(self, engine: Engine, path: Path, allowed_uid: int | None = None) -> None:
        self.engine = engine
        self.path = Path(path)
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.history: list[dict[str, Any]] = []
        self.clients: list[_Client] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._commands = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wb-attach-cmd")
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._unsubscribe = engine.bus.subscribe(self._on_event)

    # -- events out ------------------------------------------------------------------------------

    def _on_event(self, event: Message) -> None:
        if event.kind in NOT_SENT:
            return
        data = event.to_dict()
        message = {"type": "event", "event": data}
        with self._lock:  # the same lock as a join: a new client gets each event exactly once
            self.history.append(data)
            clients = list(self.clients)
        for client in clients:
            client.send(message)

    # -- connections -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.path.exists():
            self.path.unlink()  # a stale socket of a daemon that died: we own the name now
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600, never briefly open
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="wb-attach", daemon=True)
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="wb-attach-c", daemon=True).start()

    def _refuse(self, conn: socket.socket, reason: str) -> None:
        try:
            conn.sendall(encode({"type": "error", "protocol": PROTOCOL_VERSION, "message": reason}))
        except OSError:
            pass
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            peer = peer_credentials(conn)
        except ProtocolError as exc:
            self._refuse(conn, str(exc))
            return
        except OSError:
            conn.close()
            return
        refusal = check_peer(peer, self.allowed_uid)
        if refusal:
            self._refuse(conn, refusal)  # before reading a byte from them
            return
        reader = LineReader(conn)
        conn.settimeout(10.0)
        try:
            first = reader.read()
        except (ProtocolError, OSError) as exc:
            self._refuse(conn, f"refused: {exc}")
            return
        if first is None:  # a liveness probe
            conn.close()
            return
        refusal = check_hello(first)
        if refusal:
            self._refuse(conn, refusal)
            return
        conn.settimeout(None)
        client = _Client(conn, peer.pid, str(first.get("user", "?")), str(first.get("tty", "-")), first["role"])
        client.start()
        client.send({"type": "welcome", "protocol": PROTOCOL_VERSION, "session": self.engine.session.dir.name,
                     "session_dir": str(self.engine.session.dir), "role": client.role, "pid": os.getpid()})
        with self._lock:
            for data in self.history:
                client.send({"type": "event", "event": data})
            client.send({"type": "synced"})
            self.clients.append(client)
        self.engine.bus.publish(ClientPresence("", user=client.user, tty=client.tty, role=client.role,
                                               joined=True, client=client.pid))
        try:
            while not self.stopping.is_set():
                try:
                    message = reader.read()
                except ProtocolError as exc:
                    client.send({"type": "error", "message": f"refused: {exc}"})
                    break
                if message is None:
                    break
                self._handle(client, message)
        finally:
            with self._lock:
                if client in self.clients:
                    self.clients.remove(client)
            client.close()
            if not self.stopping.is_set():
                self.engine.bus.publish(ClientPresence("", user=client.user, tty=client.tty, role=client.role,
                                                       joined=False, client=client.pid))

    # -- commands in -----------------------------------------------------------------------------

    def _handle(self, client: _Client, message: dict[str, Any]) -> None:
        kind = message.get("type")
        ident = message.get("id")
        if kind == "bye":
            client.send({"type": "result", "id": ident, "ok": True})
            return
        if kind not in ("command", "shutdown", "action"):
            client.send({"type": "result", "id": ident, "ok": False, "error": f"unknown message type {kind!r}"})
            return
        if client.role != ROLE_CONTROL:
            client.send({"type": "result", "id": ident, "ok": False,
                         "error": "refused: this client is read-only (attach with --control to drive the session)"})
            return
        if kind == "action":  # a step that is not an engine command, e.g. a variable toggled for the next relaunch
            action = str(message.get("action", ""))
            if action not in CLIENT_ACTIONS:
                client.send({"type": "result", "id": ident, "ok": False, "error": f"unknown action {action!r}"})
                return
            self.engine.bus.publish(ActionTaken(str(message.get("run", "")), action=action,
                                                detail=str(message.get("detail", ""))[:500], user=client.user,
                                                tty=client.tty, client=client.pid))
            client.send({"type": "result", "id": ident, "ok": True})
            return
        if kind == "shutdown":
            self.engine.bus.publish(ActionTaken("", action="shutdown", detail="stop the session",
                                                user=client.user, tty=client.tty, client=client.pid))
            client.send({"type": "result", "id": ident, "ok": True})
            self.stopping.set()
            return
        try:
            command = command_from_dict(message.get("command") or {})
        except (ValueError, TypeError) as exc:
            client.send({"type": "result", "id": ident, "ok": False, "error": f"bad command: {exc}"})
            return
        if self.stopping.is_set():
            client.send({"type": "result", "id": ident, "ok": False, "error": "the session is stopping"})
            return
        action, detail = describe_command(command)
        self.engine.bus.publish(ActionTaken(getattr(command, "run", ""), action=action, detail=detail,
                                            user=client.user, tty=client.tty, client=client.pid))
        try:
            self._commands.submit(self._execute, client, ident, command)
        except RuntimeError:  # the executor is shut: the session is stopping
            client.send({"type": "result", "id": ident, "ok": False, "error": "the session is stopping"})

    def _execute(self, client: _Client, ident: Any, command: Message) -> None:
        try:
            value = self.engine.execute(command)
        except Exception as exc:  # noqa: BLE001 - a failed command is an answer, not a crash
            client.send({"type": "result", "id": ident, "ok": False, "error": str(exc) or type(exc).__name__})
            return
        client.send({"type": "result", "id": ident, "ok": True, "value": _result_value(value)})

    # -- the end ---------------------------------------------------------------------------------

    def drain_commands(self) -> None:
        """Refuse new commands, drop queued ones, wait for the one running."""
        self.stopping.set()
        self._commands.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.stopping.set()
        self._unsubscribe()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        for target in (self.path, info_path(self.path)):
            try:
                target.unlink()
            except FileNotFoundError:
                pass
        with self._lock:
            clients, self.clients = list(self.clients), []
        for client in clients:
            client.send({"type": "bye", "reason": "the session was stopped"})
            client.close()
        for client in clients:
            client.join(2.0)
        self._commands.shutdown(wait=False, cancel_futures=True)


# -- the daemon ------------------------------------------------------------------------------------


def _settings_from(data: dict[str, Any]):
    from .settings import Settings

    settings = Settings()
    for key, value in (data or {}).items():
        if hasattr(settings, key):
            setattr(settings, key, value)
    return settings


def serve_session(spec: dict[str, Any]) -> int:
    """Run a detachable session until it is stopped. Returns the exit code of the daemon."""
    from .session import Session
    from .signatures import load_knowledge_base

    stop = threading.Event()
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # a dropped SSH connection is exactly what we survive
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    session = Session(Path(spec["session_dir"]), name=spec.get("name", "session"))
    kb = load_knowledge_base([Path(d) for d in spec.get("signatures", [])])
    engine = Engine(session, kb, _settings_from(spec.get("settings", {})))
    server = AttachServer(engine, Path(spec["socket"]))
    server.start()
    write_live_info(server.path, {
        "pid": os.getpid(), "session": session.dir.name, "session_dir": str(session.dir),
        "socket": str(server.path), "started": time.time(), "command": " ".join(spec["argv"]),
        "protocol": PROTOCOL_VERSION,
    })
    session.write_json("detached.json", {"pid": os.getpid(), "socket": str(server.path)})
    try:
        engine.launch(spec["argv"], spec.get("env_delta") or {}, spec.get("cwd"), cause="launch (detachable)")
    except Exception as exc:  # noqa: BLE001 - the session stays up to show what went wrong
        engine.notice("", f"launch failed: {exc}", level="error")
    while not stop.is_set() and not server.stopping.is_set():
        stop.wait(0.2)
    server.drain_commands()  # a relaunch under way finishes first, so its run is stopped below
    try:
        engine.shutdown()  # every run stopped and the reaper gone before clients hear "bye"
    finally:
        server.close()
    return 0


def _detach() -> None:
    """Fork once more: the daemon is reparented away from whoever started it (no zombie for them
    to reap) and, already a session leader's child, can never regain a controlling terminal."""
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main() -> int:
    try:
        spec = json.loads(sys.stdin.read())
    except ValueError as exc:
        sys.stderr.write(f"workbench daemon: bad launch spec: {exc}\n")
        return 2
    _detach()
    try:
        return serve_session(spec)
    except Exception as exc:  # noqa: BLE001 - the daemon's log is all a user will see
        import traceback

        traceback.print_exc()
        sys.stderr.write(f"workbench daemon: {exc}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
