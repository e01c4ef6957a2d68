"""A detachable session's daemon: reads its spec, runs an engine with an attach server, and
ends when the session is stopped. Started as `python -m workbench.core.remote.daemon`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from workbench.core.engine.engine import Engine
from workbench.core.remote.attach_server import AttachServer
from workbench.core.remote.protocol import (
    PROTOCOL_VERSION,
    write_live_info,
)


def settings_from_spec(data: dict[str, Any]):
    from workbench.core.engine.settings import Settings

    settings = Settings()
    for key, value in (data or {}).items():
        if hasattr(settings, key):
            setattr(settings, key, value)
    return settings

def serve_session(spec: dict[str, Any]) -> int:
    """Run a detachable session until it is stopped. Returns the exit code of the daemon."""
    from workbench.core.knowledge.signatures import load_knowledge_base
    from workbench.core.record.session import Session

    stop = threading.Event()
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)  # a dropped SSH connection is exactly what we survive
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    session = Session(Path(spec["session_dir"]), name=spec.get("name", "session"))
    kb = load_knowledge_base([Path(d) for d in spec.get("signatures", [])])
    engine = Engine(session, kb, settings_from_spec(spec.get("settings", {})))
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

def detach_from_terminal() -> None:
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
    detach_from_terminal()
    try:
        return serve_session(spec)
    except Exception as exc:  # noqa: BLE001 - the daemon's log is all a user will see
        import traceback

        traceback.print_exc()
        sys.stderr.write(f"workbench daemon: {exc}\n")
        return 1

if __name__ == "__main__":
    raise SystemExit(main())
