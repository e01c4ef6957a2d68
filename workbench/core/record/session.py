"""A session directory: one per launch of the workbench, holding everything it saw.

Layout: `events.jsonl` (every engine event, timestamped), `runs/<id>/output.log` (raw bytes),
`runs/<id>/stacks/`, `runs/<id>/smoke.jsonl`, `session.json`. Directories are 0700 and files
0600: logs hold other people's prompts.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from platformdirs import user_state_dir


class Message(Protocol):
    """What the session records: any engine event (the session never imports the engine)."""

    def to_dict(self) -> dict[str, Any]: ...



DIR_MODE = 0o700
FILE_MODE = 0o600


def sessions_root() -> Path:
    override = os.environ.get("WORKBENCH_STATE_DIR")
    base = Path(override) if override else Path(user_state_dir("vllm-workbench"))
    return base / "sessions"


def make_private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (mkdir's mode is cut by the umask)."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
    if not missing and path.is_dir() and path.stat().st_uid == os.getuid():
        os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: str | bytes) -> Path:
    """Write a file readable only by its owner (created 0600, never world-readable first)."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, FILE_MODE)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "session"


def new_session_path(name: str) -> Path:
    """Where a new session named `name` goes (not created yet)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return sessions_root() / f"{stamp}-{_slug(name)}-{secrets.token_hex(2)}"


class Session:
    def __init__(self, directory: Path | None = None, name: str = "") -> None:
        if directory is None:
            directory = new_session_path(name)
        self.dir = make_private_dir(Path(directory))
        self.token = secrets.token_hex(8)
        self.name = name
        self._events_fd = os.open(self.dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="wb-session", daemon=True)
        self._writer.start()
        self.write_json("session.json", {"name": name, "created": time.time(), "pid": os.getpid()})

    def run_dir(self, run_id: str) -> Path:
        return make_private_dir(self.dir / "runs" / run_id)

    def record(self, event: Message) -> None:
        """Bus subscriber: queue the event; a writer thread appends it to events.jsonl."""
        self._queue.put(event)

    def _write_loop(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            batch = [event]
            while True:  # write whatever piled up in one go
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._flush(batch)
                    return
                batch.append(more)
            self._flush(batch)

    def _flush(self, batch: list[Message]) -> None:
        text = "".join(json.dumps(e.to_dict(), default=str) + "\n" for e in batch)
        os.write(self._events_fd, text.encode())

    def write_json(self, relpath: str, data: Any) -> Path:
        return write_private(self.dir / relpath, json.dumps(data, indent=2, default=str) + "\n")

    def write_text(self, relpath: str, text: str) -> Path:
        return write_private(self.dir / relpath, text)

    def append_jsonl(self, relpath: str, data: Any) -> None:
        path = self.dir / relpath
        make_private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
        try:
            os.write(fd, (json.dumps(data, default=str) + "\n").encode())
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=5)
        try:
            os.close(self._events_fd)
        except OSError:
            pass


def read_events(directory: Path) -> list[dict[str, Any]]:
    path = Path(directory) / "events.jsonl"
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short when the workbench was killed mid-write
    return out
