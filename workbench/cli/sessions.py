"""`workbench sessions`, `open`, `bundle`, `attach` and `stop`: sessions past and live."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from workbench.cli.common import env_delta_of
from workbench.cli.parser import UsageError


def attach_face(session: str | None, control: bool, follow: bool, layout: str | None) -> int:
    """The TUI as a client when there is one and a terminal to draw it on, else the printer."""
    from workbench.faces.pairing import attach_cli

    if not follow and sys.stdout.isatty():
        try:
            from workbench.ui.remote import run_remote_app
        except ImportError:
            pass
        else:
            return run_remote_app(session, control=control, layout=layout)
    return attach_cli(session, control, None, None, {}, {}, history=False, follow_live=True)

def cmd_attach(args: argparse.Namespace) -> int:
    from workbench.faces.pairing import attach_cli, parse_arg_delta

    if args.do is None and not args.history and not args.follow:
        return attach_face(args.session, args.control, follow=False, layout=args.layout)
    return attach_cli(args.session, args.control, args.do, args.run, env_delta_of(args.env),
                      parse_arg_delta(args.arg), args.history, args.follow, args.lines)

def cmd_stop(args: argparse.Namespace) -> int:
    from workbench.faces.pairing import stop_cli

    return stop_cli(args.session)

def cmd_sessions(args: argparse.Namespace) -> int:
    from workbench.core.engine.recorded import list_sessions
    from workbench.faces.pairing import live_names

    found = list_sessions()
    live = live_names()
    if args.json:
        sys.stdout.write(json.dumps([{"path": str(s.path), "started": s.started, "command": s.command,
                                      "live": s.path.resolve() in live,
                                      "runs": [{"run": r, "verdict": v} for r, v in s.runs]} for s in found]) + "\n")
        return 0
    if not found:
        sys.stdout.write("no sessions yet\n")
        return 0
    rows = [("SESSION", "STATE", "STARTED", "RUNS", "COMMAND")]
    for info in found:
        rows.append((info.path.name, "live" if info.path.resolve() in live else "ended",
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started)),
                     " ".join(f"{r}:{v or '?'}" for r, v in info.runs) or "-", info.command[:80]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]  # columns as wide as their widest cell
    for row in rows:
        sys.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
                         + "  " + row[4] + "\n")
    return 0

def session_path(name: str) -> Path:
    from workbench.core.engine.recorded import resolve_session

    try:
        return resolve_session(name)
    except FileNotFoundError as exc:
        raise UsageError(f"workbench: {exc}") from None

def cmd_open(args: argparse.Namespace) -> int:
    from workbench.core.engine.recorded import load_dumps, load_runs
    from workbench.ui.app import make_app

    directory = session_path(args.session)
    app = make_app([], layout=args.layout or "single", launch=False)
    runs = load_runs(directory, app.engine.recogniser, app.engine.settings)
    if not runs:
        raise UsageError(f"workbench: session {directory} has no runs")
    for run in runs:
        app.engine.adopt(run)
        app.engine.dumps[run.id] = load_dumps(run.dir)
    app.runs = [r.id for r in runs]
    app.pane_runs = ([r.id for r in runs[-len(app.pane_runs):]] + [None] * len(app.pane_runs))[: len(app.pane_runs)]
    app.sub_title = f"{directory.name} (read-only: r relaunches as a new run)"
    try:
        app.run()
    finally:
        app.engine.shutdown()
    return 0

def cmd_bundle(args: argparse.Namespace) -> int:
    from workbench.core.record.bundle import bundle_session

    directory = session_path(args.session)
    out = bundle_session(directory, Path(args.output) if args.output else None)
    sys.stdout.write(f"{out}\n")
    return 0
