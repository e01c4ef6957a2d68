"""One attached client as the server sees it: its queue and writer thread, and how a command
it sends is described in the timeline."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any

from workbench.core.engine.events import (
    DumpStacks,
    Launch,
    Message,
    Relaunch,
    Smoke,
    Stop,
)
from workbench.core.remote.protocol import (
    encode,
)

CLIENT_QUEUE = 20_000  # messages a slow client may lag behind before it is dropped

class AttachedClient:
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

def result_value(value: object) -> Any:
    if hasattr(value, "id") and hasattr(value, "spec"):  # a Run
        return {"run": value.id}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return {"count": len(value)}
    return value
