"""Reaching a node with the user's own OpenSSH client: targets, the ssh command line, and a
socket-shaped view of a pipe pair so the attach protocol's reader and writers work unchanged.

No transport of our own and no port of our own: `ssh` brings the user's config, agent, keys and
known hosts; connections to one node share a ControlMaster socket in a private directory.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

AGENT_MODULE = "workbench.core.remote.agent"
NOT_INSTALLED = "workbench is not installed on {host}: pip install vllm-workbench there, or set python = ... in the cluster file"
_TARGET = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[^\]]+\]|[^@/:\s]+)(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return self.destination + (f":{self.port}" if self.port else "")


def parse_target(text: str) -> SshTarget:
    """`ssh://[user@]host[:port]`, `user@host` or a Host alias of the ssh config."""
    found = _TARGET.match(text.strip())
    if not found:
        raise ValueError(f"not an SSH target: {text!r} (expected ssh://[user@]host[:port] or a Host of your ssh config)")
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port out of range in SSH target {text!r}")
    return SshTarget(found["host"].strip("[]"), found["user"], port)


def control_dir() -> Path:
    """A private directory for ControlMaster sockets (short: a socket path must fit 108 bytes)."""
    from workbench.core.record.session import make_private_dir

    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return make_private_dir(Path(base) / f"wb-ssh-{os.getuid()}")


def ssh_argv(target: SshTarget, remote: list[str], ssh_config: str | None = None) -> list[str]:
    """The `ssh` command that runs `remote` on the node with stdin/stdout as the channel.

    BatchMode: a password prompt would hang a headless run; ServerAlive: a dead network is
    noticed on the local side too; ControlMaster=auto with ControlPersist=no shares the first
    connection with later ones (preflight, dumps) and leaves no master behind.
    """
    argv = ["ssh"]
    if ssh_config:
        argv += ["-F", ssh_config]
    if target.port:
        argv += ["-p", str(target.port)]
    argv += ["-T", "-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
             "-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir()}/%C", "-o", "ControlPersist=no",
             target.destination, "--", " ".join(_remote_word(part) for part in remote)]
    return argv


def _remote_word(part: str) -> str:
    """Quoted for the node's shell, except a leading `~/`: that is the home dir over there."""
    if part.startswith("~/"):
        return "~/" + shlex.quote(part[2:])
    return shlex.quote(part)


def agent_command(python: str = "python3") -> list[str]:
    return [python, "-m", AGENT_MODULE]


def not_installed(stderr: str) -> bool:
    """Did the node's python say it has no workbench (or is there no such python)?"""
    return ("No module named" in stderr and "workbench" in stderr) or "command not found" in stderr \
        or ": not found" in stderr or "No such file or directory" in stderr


class PipeSocket:
    """The socket methods LineReader and AttachedClient use, over a read fd and a write fd."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._write_open = True

    def recv(self, size: int) -> bytes:
        return os.read(self.read_fd, size)

    def sendall(self, data: bytes) -> None:
        if not self._write_open:
            raise BrokenPipeError("the channel is closed")
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def settimeout(self, _timeout: float | None) -> None:
        pass  # pipes block; the SSH keepalive bounds a dead peer

    def shutdown(self, _how: int = 0) -> None:
        """Half-close: the peer reads EOF (that is how an agent learns its client went away)."""
        if self._write_open:
            self._write_open = False
            try:
                os.close(self.write_fd)
            except OSError:
                pass

    def close(self) -> None:
        self.shutdown()
        try:
            os.close(self.read_fd)
        except OSError:
            pass
