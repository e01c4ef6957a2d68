"""Helpers every command uses: env deltas, the knowledge base, settings, a free port."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.parser import UsageError


def env_delta_of(items: list[str]) -> dict[str, str | None]:
    delta: dict[str, str | None] = {}
    for item in items:
        if item.startswith("-") and "=" not in item:
            delta[item[1:]] = None
        elif "=" in item:
            name, value = item.split("=", 1)
            if not name:
                raise UsageError(f"--env {item!r}: expected NAME=VALUE")
            delta[name] = value if value else None
        else:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE")
    return delta

def knowledge_base(dirs: list[str]):
    from workbench.core.knowledge.signatures import load_knowledge_base

    return load_knowledge_base([Path(d) for d in dirs])

def settings_from(args: argparse.Namespace):
    from workbench.core.engine.settings import Settings

    settings = Settings()
    if args.stall_window is not None:
        settings.stall_window = args.stall_window
    if args.startup_timeout is not None:
        settings.startup_timeout = args.startup_timeout
    settings.smoke = not args.no_smoke
    if getattr(args, "health_interval", None) is not None:
        if args.health_interval <= 0:
            from workbench.cli.parser import UsageError

            raise UsageError(f"--health-interval: give a positive number of seconds, not {args.health_interval:g}")
        settings.health_interval = args.health_interval
    return settings

def default_settings():
    from workbench.core.engine.settings import Settings

    return Settings()

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

def attach_errors() -> tuple[type[Exception], ...]:
    from workbench.core.remote.attach_client import AttachError
    from workbench.core.remote.protocol import ProtocolError

    return AttachError, ProtocolError
