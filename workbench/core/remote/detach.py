"""Start a detachable session's daemon and wait until it answers; stop it and wait until it is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.core.engine.settings import Settings
from workbench.core.record.session import make_private_dir, new_session_path
from workbench.core.remote.attach_client import AttachClient, AttachError, LiveSession, resolve_live
from workbench.core.remote.protocol import connectable, live_info, socket_path

DAEMON_LOG = "daemon.log"


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def start_daemon(argv: list[str], env_delta: dict[str, str | None] | None = None, cwd: str | None = None,
                 settings: Settings | None = None, signatures: list[str] | None = None,
                 session_dir: str | None = None, timeout: float = 30.0) -> LiveSession:
    """Launch `argv` under a daemon of its own; returns once its socket answers."""
    name = os.path.basename(argv[0]) if argv else "session"
    directory = make_private_dir(Path(session_dir) if session_dir else new_session_path(name))
    sock = socket_path(directory.name)
    spec: dict[str, Any] = {
        "argv": list(argv), "env_delta": dict(env_delta or {}), "cwd": cwd, "name": name,
        "session_dir": str(directory), "socket": str(sock), "signatures": list(signatures or []),
        "settings": asdict(settings) if settings is not None else {},
    }
    log_fd = os.open(directory / DAEMON_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        # the spec goes through a pipe: env values may be secrets, and argv is world-readable
        starter = subprocess.Popen(
            [sys.executable, "-m", "workbench.core.remote.daemon"], stdin=subprocess.PIPE, stdout=log_fd,
            stderr=log_fd, start_new_session=True, close_fds=True, cwd=cwd or None,
        )
    finally:
        os.close(log_fd)
    assert starter.stdin is not None
    starter.stdin.write(json.dumps(spec).encode())
    starter.stdin.close()
    code = starter.wait(timeout=timeout)  # the first fork returns at once; the daemon carries on
    if code != 0:
        raise AttachError(f"the session daemon did not start: {_tail(directory / DAEMON_LOG) or f'exit {code}'}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = live_info(sock)
        if info and connectable(sock):
            return LiveSession(directory.name, sock, directory, int(info.get("pid", 0)),
                               float(info.get("started", 0.0)), " ".join(argv))
        time.sleep(0.05)
    raise AttachError(f"the session daemon did not answer within {timeout:.0f} s: "
                      f"{_tail(directory / DAEMON_LOG) or 'see ' + str(directory / DAEMON_LOG)}")


def stop_session(name: str | None, timeout: float = 60.0) -> LiveSession:
    """Stop every run of a live session and its daemon; returns once the daemon has exited."""
    import psutil

    live = resolve_live(name)
    client = AttachClient(live.socket, control=True).connect()
    try:
        client.shutdown_session(timeout)
        client.closed.wait(timeout)  # the daemon hangs up after stopping the runs and the reaper
    finally:
        client.close()
    try:
        psutil.Process(live.pid).wait(timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        raise AttachError(f"the daemon (PID {live.pid}) did not exit within {timeout:.0f} s") from None
    return live
