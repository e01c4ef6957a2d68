"""`workbench run`, `demo`, `env` and `dump`: launching and looking at a live tree."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.cli.common import env_delta_of, free_port, knowledge_base, settings_from
from workbench.cli.parser import UsageError
from workbench.cli.sessions import attach_face
from workbench.core.knowledge import verdicts as V


def cmd_run(args: argparse.Namespace, command: list[str]) -> int:
    if not command:
        raise UsageError("workbench run: give the command after --, e.g. workbench run --headless -- vllm serve MODEL")
    kb = knowledge_base(args.signatures)
    settings = settings_from(args)
    env_delta = env_delta_of(args.env)
    if args.debugpy is not None:
        from workbench.cli.debug import debug_command

        command, env_delta = debug_command(command, env_delta, args)
    if args.detachable or args.detach:
        return start_detachable(command, args, settings, args.signatures, env_delta, args.cwd,
                           args.session_dir, headless=args.headless)
    if args.headless:
        from workbench.faces.headless import HeadlessOptions, run_headless

        options = HeadlessOptions(
            json=args.json, raw=args.raw, force=args.force, serve=args.serve, stop_after=args.stop_after,
            session_dir=args.session_dir, quiet=args.quiet, env_delta=env_delta, cwd=args.cwd, strict=args.strict,
        )
        return run_headless(command, options, settings, kb)
    return open_tui(command, args.layout, kb, settings, args.session_dir, env_delta)

def open_tui(command: list[str], layout: str | None, kb, settings, session_dir: str | None,
         env_delta: dict[str, str | None] | None = None, matrix=None) -> int:
    try:
        from workbench.ui.app import run_app
        from workbench.ui.layouts import load_layout
    except ImportError as exc:
        raise UsageError(f"the TUI is not available: {exc}") from None
    load_layout(layout or "single")  # a bad layout is refused before anything is launched
    return run_app(command, layout=layout, kb=kb, settings=settings, session_dir=session_dir, env_delta=env_delta,
                   matrix=matrix)

def start_detachable(command: list[str], args: argparse.Namespace, settings, signatures: list[str],
                env_delta: dict[str, str | None], cwd: str | None, session_dir: str | None,
                headless: bool) -> int:
    """Start the session's daemon, then attach this terminal to it as the controlling face."""
    from workbench.core.remote.detach import start_daemon

    if not command:
        raise UsageError("workbench --detachable: give the command after --")
    live = start_daemon(command, env_delta, cwd, settings, signatures, session_dir)
    if args.detach:
        sys.stdout.write(f"{live.name}\n")
        sys.stderr.write(f"detached session {live.name} (daemon PID {live.pid}): "
                         f"workbench attach {live.name} [--control]; workbench stop {live.name}\n")
        return 0
    return attach_face(live.name, control=True, follow=headless, layout=getattr(args, "layout", None))

def cmd_dump(args: argparse.Namespace) -> int:
    from workbench.core.probes.stacks import dump_tree, format_dumps, python_dumps
    from workbench.core.process.procs import tree

    pids = [p.pid for p in tree(args.pid)]
    if not pids:
        sys.stderr.write(f"workbench dump: error: no process with PID {args.pid}\n")
        return V.EXIT_USAGE
    from workbench.core.knowledge.stuck import analyze
    from workbench.core.probes.procfacts import facts_between, sample

    before = sample(pids)  # the state before py-spy attaches
    dumps = python_dumps(dump_tree(pids, args.native, args.locals, args.timeout))
    if args.json:
        sys.stdout.write(json.dumps([d.to_dict() for d in dumps]) + "\n")
    else:
        stuck = analyze(dumps, facts_between(before, sample(pids)))
        sys.stdout.write("Where it is stuck:\n" + "".join(f"  {line}\n" for line in stuck.summary) + "\n")
        sys.stdout.write(format_dumps(dumps))
    stopped = [d.pid for d in dumps if d.stopped]
    if stopped and args.resume_stopped:
        from workbench.core.probes.stacks import resume_stopped

        for pid in resume_stopped(stopped):
            sys.stderr.write(f"workbench dump: resumed PID {pid} (SIGCONT)\n")
    elif stopped:
        sys.stderr.write(f"workbench dump: {len(stopped)} process(es) left stopped as found "
                         "(--resume-stopped sends them SIGCONT)\n")
    return 0 if any(d.ok for d in dumps) else 1

def cmd_env(args: argparse.Namespace, command: list[str]) -> int:
    from workbench.core.probes.envreport import environment_report, report_text

    report = environment_report(command or ["vllm"])
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else report_text(report))
    return 0

def cmd_demo(args: argparse.Namespace) -> int:
    if args.list:
        from workbench.sim.cli import main as sim_main

        return sim_main(["--list"])
    from workbench.sim.scenarios import SCENARIOS

    if args.scenario not in SCENARIOS:  # refused like `workbench sim nosuch`, before the TUI opens
        raise UsageError(f"workbench demo: unknown scenario {args.scenario!r}; one of: {', '.join(SCENARIOS)}")
    if args.stall_window <= 0:
        raise UsageError(f"workbench demo: --stall-window must be positive, not {args.stall_window:g}")
    command = [sys.executable, "-m", "workbench.sim", args.scenario, "--port", str(free_port())]
    from workbench.core.engine.settings import Settings

    return open_tui(command, args.layout, knowledge_base([]), Settings(stall_window=args.stall_window), None)
