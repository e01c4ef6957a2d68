"""`workbench run --debugpy PORT`: the command rewritten for debugpy, and what to paste where."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.parser import UsageError


def debug_command(command: list[str], env_delta: dict[str, str | None],
                  args: argparse.Namespace) -> tuple[list[str], dict[str, str | None]]:
    from workbench.core.engine.debugger import DebugLaunchError, plan_debug_run

    if not 0 < args.debugpy < 65536:
        raise UsageError(f"workbench run: --debugpy {args.debugpy}: not a port number")
    try:
        plan = plan_debug_run(command, args.debugpy, wait=args.debugpy_wait,
                              single_process=not args.debugpy_multiprocess, cwd=args.cwd)
    except DebugLaunchError as exc:
        raise UsageError(f"workbench run --debugpy: {exc}") from None
    sys.stderr.write(debug_instructions(plan))
    return plan.argv, {**plan.env_delta, **env_delta}  # the user's own --env wins


def debug_instructions(plan) -> str:  # noqa: ANN001 - a DebugPlan
    lines = [f"workbench: debugpy listens on 127.0.0.1:{plan.port}"
             + (" and waits for the IDE before the command runs" if "--wait-for-client" in plan.argv else "")]
    if plan.env_delta:
        lines.append("  " + " ".join(f"{k}={v}" for k, v in plan.env_delta.items())
                     + ": the engine runs in the API server's process, where the breakpoints are"
                     " (--debugpy-multiprocess keeps it apart; then attach with subProcess)")
    lines.append(f"  from your machine: {plan.ssh_line()}")
    lines.append("  then attach with this .vscode/launch.json (localRoot: your copy of the sources):")
    lines.extend("    " + line for line in plan.launch_json().splitlines())
    lines.append("  a stepping stall: a paused background thread may hold the logging lock; resume all threads")
    return "\n".join(lines) + "\n"
