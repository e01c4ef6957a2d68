"""The node agent: `python -m workbench.core.remote.agent`, started by `ssh` on each node.

It runs the node's own engine (pty, pump, raw log, recogniser, watcher, dumps, no orphans) and
speaks the attach protocol over its stdin/stdout instead of a Unix socket: one control client,
the workbench on the other end of the SSH session. Besides the events it streams what the local
side cannot read from here: each run's raw log bytes (`log`, stamped with this node's clock) and
the files a dump writes (`file`). `preflight` answers the node's own checks.

The session dir is a private temp dir, removed at the end: the local side keeps the session.
When the SSH session drops (stdin EOF, SIGHUP) every run is stopped: nothing outlives the link.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from workbench.core.engine.engine import Engine
from workbench.core.engine.events import Message, ProcessExited, RunStarted, StacksDumped
from workbench.core.remote.attach_server import AttachServer
from workbench.core.remote.clients import AttachedClient
from workbench.core.remote.daemon import settings_from_spec
from workbench.core.remote.protocol import (
    PROTOCOL_VERSION,
    LineReader,
    ProtocolError,
    check_hello,
    encode,
)
from workbench.core.remote.ssh import PipeSocket

CHUNK = 256 * 1024  # one log message: big enough for a flood, small enough to interleave events
POLL = 0.02


class LogTailer:
    """Sends a run's raw log to the client as it grows, each chunk stamped with the node's time."""

    def __init__(self, run_id: str, path: Path, client: AttachedClient) -> None:
        self.run_id = run_id
        self.client = client
        self._fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"wb-agent-tail-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def drain(self) -> None:
        """Send everything written so far (before the exit event, so no line comes after it)."""
        with self._lock:
            if self._fd < 0:
                return
            while True:
                data = os.read(self._fd, CHUNK)
                if not data:
                    return
                self.client.send({"type": "log", "run": self.run_id, "t": time.time(),
                                  "data": base64.b64encode(data).decode()})

    def _loop(self) -> None:
        while not self._done.wait(POLL):
            self.drain()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)
        self.drain()
        with self._lock:
            os.close(self._fd)
            self._fd = -1


class StdioServer(AttachServer):
    """The attach server with one client on a pipe pair, and the node's bytes streamed to it."""

    def __init__(self, engine: Engine, channel: PipeSocket) -> None:
        super().__init__(engine, Path(engine.session.dir) / "agent.sock")
        self.channel = channel
        self.client: AttachedClient | None = None
        self.tailers: dict[str, LogTailer] = {}

    def _on_event(self, event: Message) -> None:
        client = self.client
        if client is not None and isinstance(event, StacksDumped):
            self._send_files(client, [Path(event.path), Path(event.path).with_suffix(".txt")])
        if isinstance(event, ProcessExited) and event.run in self.tailers:
            self.tailers[event.run].drain()
        super()._on_event(event)
        if client is not None and isinstance(event, RunStarted):  # after the event: the run exists there
            tailer = LogTailer(event.run, Path(event.log_path), client)
            self.tailers[event.run] = tailer
            tailer.start()

    def _send_files(self, client: AttachedClient, paths: list[Path]) -> None:
        root = Path(self.engine.session.dir)
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            client.send({"type": "file", "path": str(path.relative_to(root)), "data": base64.b64encode(data).decode()})

    def serve(self, first: dict[str, Any], welcome: dict[str, Any]) -> None:
        """Serve the one client until it hangs up or asks for a shutdown."""
        client = AttachedClient(self.channel, int(first.get("pid", 0)), str(first.get("user", "?")),
                                str(first.get("tty", "-")), str(first["role"]))
        client.start()
        client.send({"type": "welcome", "protocol": PROTOCOL_VERSION, "session": self.engine.session.dir.name,
                     "session_dir": str(self.engine.session.dir), "role": client.role, "pid": os.getpid(),
                     **welcome, "time": time.time()})
        client.send({"type": "synced"})
        with self._lock:
            self.client = client
            self.clients.append(client)
        reader = LineReader(self.channel)  # type: ignore[arg-type]
        while not self.stopping.is_set():
            try:
                message = reader.read()
            except ProtocolError as exc:
                client.send({"type": "error", "message": f"refused: {exc}"})
                break
            if message is None:
                break  # the SSH session is gone
            if message.get("type") == "clock":  # answered at once: the local side measures the skew
                client.send({"type": "result", "id": message.get("id"), "ok": True, "value": {"time": time.time()}})
            elif message.get("type") == "preflight":
                threading.Thread(target=self._preflight, args=(client, message), daemon=True).start()
            else:
                self._handle(client, message)

    def _handle(self, client: AttachedClient, message: dict[str, Any]) -> None:
        command = message.get("command")
        if isinstance(command, dict) and isinstance(command.get("argv"), list) and command["argv"]:
            command["argv"][0] = os.path.expanduser(str(command["argv"][0]))  # `~/venv/bin/python`: this node's home
        super()._handle(client, message)

    def _preflight(self, client: AttachedClient, message: dict[str, Any]) -> None:
        from workbench.core.remote.nodecheck import node_preflight

        try:
            argv = [os.path.expanduser(str(a)) if i == 0 else str(a) for i, a in enumerate(message.get("argv") or [])]
            value = node_preflight(argv, dict(message.get("env_delta") or {}),
                                   message.get("cwd"))
        except Exception as exc:  # noqa: BLE001 - a failed check is an answer, not a crash
            client.send({"type": "result", "id": message.get("id"), "ok": False, "error": str(exc)})
            return
        client.send({"type": "result", "id": message.get("id"), "ok": True, "value": value})

    def close(self) -> None:
        for tailer in list(self.tailers.values()):
            tailer.close()
        super().close()


def main() -> int:
    # the protocol owns fd 0 and 1; anything else that prints goes to stderr, never into the channel
    channel = PipeSocket(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    gone = threading.Event()
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (gone.set(), channel.close()))
    first = LineReader(channel).read()  # type: ignore[arg-type]
    refusal = check_hello(first) if first is not None else "no hello"
    if first is None or refusal:
        channel.sendall(encode({"type": "error", "protocol": PROTOCOL_VERSION, "message": refusal}))
        return 2
    from workbench.core.knowledge.signatures import load_knowledge_base
    from workbench.core.record.session import Session

    directory = Path(tempfile.mkdtemp(prefix="workbench-node-"))
    session = Session(directory, name=str(first.get("node", "node")))
    engine = Engine(session, load_knowledge_base(), settings_from_spec(first.get("settings") or {}))
    server = StdioServer(engine, channel)
    try:
        server.serve(first, {"node": first.get("node", ""), "host": socket.gethostname()})
    finally:
        server.drain_commands()
        try:
            engine.shutdown()  # every run stopped before the client hears "bye"
        finally:
            server.close()
            if server.client is not None:
                server.client.join(5.0)
            if not first.get("keep"):
                shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
