"""The attach protocol: where a live session's socket lives, who may connect, and the messages.

JSON lines over a Unix socket. The client speaks first with a `hello` naming the protocol
version and the role it wants (`watch` or `control`); the server answers `welcome` or `error`
and closes. After the welcome the server sends the session's history as `event` messages,
then `synced`, then live events. A control client sends `command` messages (the engine's
command dataclasses as JSON) and gets a `result` for each id.

The socket sits in a 0700 directory under the user's runtime dir, and the server checks the
peer's uid with SO_PEERCRED: file permissions are the first fence, the credential check the
second (a root-owned client or a loosened directory must not get in). There is no TCP listener.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.record.session import make_private_dir

PROTOCOL_VERSION = 1
ROLE_WATCH = "watch"
ROLE_CONTROL = "control"
MAX_LINE = 16 * 1024 * 1024  # one message; a longer line is a broken peer, not a big event
_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes; keep a margin


class ProtocolError(Exception):
    """A peer that speaks another version, or not this protocol at all."""


# -- where --------------------------------------------------------------------------------------


def runtime_dir() -> Path:
    """The 0700 directory holding live sessions' sockets.

    `$WORKBENCH_RUNTIME_DIR` (tests), else `$XDG_RUNTIME_DIR/vllm-workbench`, else a per-uid
    directory under the temp dir. A directory we do not own is refused: someone could be
    waiting there with a socket of their own.
    """
    override = os.environ.get("WORKBENCH_RUNTIME_DIR")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if override:
        path = Path(override)
    elif xdg and Path(xdg).is_dir():
        path = Path(xdg) / "vllm-workbench"
    else:
        path = Path(tempfile.gettempdir()) / f"vllm-workbench-{os.getuid()}"
    make_private_dir(path)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ProtocolError(f"{path} is not a private directory of this user; refusing to use it")
    return path


def socket_path(session_name: str, directory: Path | None = None) -> Path:
    directory = directory or runtime_dir()
    path = directory / f"{session_name}.sock"
    if len(os.fsencode(path)) > _SUN_PATH_MAX:  # a long state dir or session name: a short alias
        path = directory / f"{hashlib.sha1(session_name.encode()).hexdigest()[:16]}.sock"
    return path


def info_path(sock: Path) -> Path:
    return sock.with_suffix(".json")


# -- who ----------------------------------------------------------------------------------------


@dataclass
class Peer:
    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> Peer:
    """The connecting process as the kernel saw it at connect() (Linux SO_PEERCRED)."""
    if not hasattr(socket, "SO_PEERCRED"):  # no way to know who is calling: nobody gets in
        raise ProtocolError("refused: this platform cannot tell who is connecting (no SO_PEERCRED)")
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def check_peer(peer: Peer, allowed_uid: int) -> str | None:
    """None when the peer may talk to us, else why not (sent back before closing)."""
    if peer.uid != allowed_uid:
        return f"refused: uid {peer.uid} is not the owner of this session (uid {allowed_uid})"
    return None


def whoami() -> dict[str, str]:
    """Who a client is, for the shared timeline: user name and terminal."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    tty = "-"
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.isatty():
                tty = os.ttyname(stream.fileno()).removeprefix("/dev/")
                break
        except (OSError, ValueError, AttributeError):
            continue
    return {"user": user, "tty": tty}


# -- what ---------------------------------------------------------------------------------------


def hello(role: str, who: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "hello", "protocol": PROTOCOL_VERSION, "role": role, **(who or whoami()), "pid": os.getpid()}


def check_hello(message: dict[str, Any]) -> str | None:
    """None for a hello we can serve, else the refusal the client will print."""
    if message.get("type") != "hello":
        return "refused: expected a hello message first"
    version = message.get("protocol")
    if version != PROTOCOL_VERSION:
        return (f"refused: protocol version {version} is not supported by this session (it speaks "
                f"{PROTOCOL_VERSION}); attach with the same workbench version that started it")
    if message.get("role") not in (ROLE_WATCH, ROLE_CONTROL):
        return f"refused: unknown role {message.get('role')!r}"
    return None


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, default=str, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not a JSON line: {exc}") from None
    if not isinstance(message, dict) or "type" not in message:
        raise ProtocolError("not a protocol message")
    return message


class LineReader:
    """Whole lines from a socket, without `makefile` (which hides partial reads on close)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def read(self) -> dict[str, Any] | None:
        """The next message, or None at the end of the stream."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise ProtocolError("message too long")
            try:
                chunk = self.sock.recv(256 * 1024)
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return decode(line)


def live_info(sock: Path) -> dict[str, Any] | None:
    """The side file the server writes next to its socket (session dir, pid, command)."""
    try:
        data = json.loads(info_path(sock).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_live_info(sock: Path, data: dict[str, Any]) -> None:
    from workbench.core.record.session import write_private

    write_private(info_path(sock), json.dumps(data, indent=2) + "\n")


def connectable(sock: Path, timeout: float = 1.0) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        probe.close()
