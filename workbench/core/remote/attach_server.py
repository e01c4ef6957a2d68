"""The attach server: a Unix socket beside the session through which other faces join a live
engine, see its history and events, and (with control) send it commands."""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.core.engine.engine import Engine
from workbench.core.engine.events import (
    ActionTaken,
    ClientPresence,
    Message,
    command_from_dict,
)
from workbench.core.remote.clients import AttachedClient, describe_command, result_value
from workbench.core.remote.protocol import (
    PROTOCOL_VERSION,
    ROLE_CONTROL,
    LineReader,
    ProtocolError,
    check_hello,
    check_peer,
    encode,
    info_path,
    peer_credentials,
)

# Line-count events stay in the daemon: clients read the logs from the files, and sending one per
# batch to every client during a flood would only cost the engine's process CPU.
NOT_SENT = {"lines"}

CLIENT_ACTIONS = {"env"}  # timeline entries a control client may add without an engine command

class AttachServer:
    def __init__(self, engine: Engine, path: Path, allowed_uid: int | None = None) -> None:
        self.engine = engine
        self.path = Path(path)
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.history: list[dict[str, Any]] = []
        self.clients: list[AttachedClient] = []
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
        client = AttachedClient(conn, peer.pid, str(first.get("user", "?")), str(first.get("tty", "-")), first["role"])
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

    def _handle(self, client: AttachedClient, message: dict[str, Any]) -> None:
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

    def _execute(self, client: AttachedClient, ident: Any, command: Message) -> None:
        try:
            value = self.engine.execute(command)
        except Exception as exc:  # noqa: BLE001 - a failed command is an answer, not a crash
            client.send({"type": "result", "id": ident, "ok": False, "error": str(exc) or type(exc).__name__})
            return
        client.send({"type": "result", "id": ident, "ok": True, "value": result_value(value)})

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
