"""The argument parser of every command: one place that says what the CLI accepts."""

from __future__ import annotations

import argparse

from workbench.core.knowledge import verdicts as V

EPILOG_EXIT_CODES = "exit codes: " + ", ".join(
    f"{code} {name}" for name, code in V.EXIT_CODES.items()
) + f", {V.EXIT_USAGE} bad input, {V.EXIT_PREFLIGHT} preflight refused (port taken), {V.EXIT_INTERRUPTED} interrupted"

SUBCOMMANDS = ("run", "analyze", "sim", "demo", "signatures", "dump", "env", "attach", "stop", "help")

class UsageError(Exception):
    pass

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

def split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    """Options before `--`, the supervised command after it."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []

def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session-dir", help="write the session here instead of the state dir")
    p.add_argument("--stall-window", type=float, default=None, metavar="S",
                   help="seconds without output, progress or CPU before 'hung' (default 120)")
    p.add_argument("--startup-timeout", type=float, default=None, metavar="S",
                   help="seconds to wait for ready before 'hung' (default 1800)")
    p.add_argument("--no-smoke", action="store_true", help="judge on readiness alone")
    p.add_argument("--health-interval", type=float, default=None, metavar="S",
                   help="while serving: seconds between GET /health and /metrics looks (default 3)")
    p.add_argument("--signatures", action="append", default=[], metavar="DIR",
                   help="extra signature files or directories (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set a variable for the command (NAME= or -NAME unsets)")
    p.add_argument("--cwd", help="working directory of the command")
    p.add_argument("--strict", action="store_true", help="refuse to launch when the model folder check finds an error")
    p.add_argument("--debugpy", type=int, default=None, metavar="PORT",
                   help="run the command under `python -m debugpy --listen 127.0.0.1:PORT` (attach an IDE)")
    p.add_argument("--debugpy-wait", action="store_true", help="with --debugpy: wait for the IDE before running")
    p.add_argument("--debugpy-multiprocess", action="store_true",
                   help="with --debugpy: keep vLLM's engine in its own process (default: VLLM_ENABLE_V1_MULTIPROCESSING=0)")

def _add_detach_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detachable", action="store_true",
                   help="the runs outlive this terminal: the engine runs in a daemon, this face attaches to it")
    p.add_argument("--detach", action="store_true", help="with --detachable: start the session and return at once")

def _add_node_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on", default=None, metavar="ssh://[user@]host[:port]",
                   help="run the command on another machine, supervised by a workbench agent there (over ssh)")
    p.add_argument("--cluster", default=None, metavar="FILE", help="run a multi-node cluster file (clusters/*.toml)")
    p.add_argument("--ssh-config", default=None, metavar="FILE", help="the ssh config to use (ssh -F)")
    p.add_argument("--python", default=None, help="with --on: the node's python that has the workbench (default python3)")

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbench",
        description="Debug vLLM servers live: launch, watch, recognise, dump, replay.",
        epilog="Without a subcommand: `workbench [--layout NAME] -- CMD ...` opens the TUI.\n" + EPILOG_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version")
    parser.add_argument("--layout", default=None, help="TUI layout (single, compare, grid, or a file)")
    _add_detach_options(parser)
    _add_node_options(parser)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="launch a command and supervise it", epilog=EPILOG_EXIT_CODES)
    run.add_argument("--headless", action="store_true", help="no TUI: stream, judge, exit with the verdict")
    run.add_argument("--json", action="store_true", help="print one JSON result on stdout (log to stderr)")
    run.add_argument("--raw", action="store_true", help="print the child's bytes unfiltered")
    run.add_argument("--force", action="store_true", help="launch even if preflight finds the port taken")
    run.add_argument("--serve", action="store_true", help="after a healthy verdict keep serving until Ctrl-C")
    run.add_argument("--stop-after", type=float, default=0.0, metavar="S",
                     help="after a healthy verdict keep serving S seconds, then stop")
    run.add_argument("--quiet", action="store_true", help="print phase changes and the verdict, not the log")
    run.add_argument("--layout", default=argparse.SUPPRESS, help="TUI layout")
    _add_run_options(run)
    _add_detach_options(run)
    _add_node_options(run)

    analyze = sub.add_parser("analyze", help="recognise phases, findings and the root cause in logs")
    analyze.add_argument("logs", nargs="+", help="log files, session directories, or - for stdin")
    analyze.add_argument("--json", action="store_true")
    analyze.add_argument("--signatures", action="append", default=[], metavar="DIR")

    sub.add_parser("sim", help="a stand-in for `vllm serve` (no GPU); `workbench sim --list`", add_help=False)

    demo = sub.add_parser("demo", help="the TUI on the simulator")
    demo.add_argument("scenario", nargs="?", default="healthy")
    demo.add_argument("--list", action="store_true", help="list the scenarios")
    demo.add_argument("--layout", default=argparse.SUPPRESS)
    demo.add_argument("--stall-window", type=float, default=30.0, metavar="SECONDS",
                      help="no output and no progress this long is a hang (default 30: the simulator is quick)")

    cmp_ = sub.add_parser("compare", help="compare two runs (logs or session run dirs): phases, findings, conclusion")
    cmp_.add_argument("first")
    cmp_.add_argument("second")
    cmp_.add_argument("--json", action="store_true")
    cmp_.add_argument("--signatures", action="append", default=[], metavar="DIR")

    sigs = sub.add_parser("signatures", help="list the knowledge base, or test it on a log")
    sigs.add_argument("action", nargs="?", choices=["list", "test", "check", "export"], default="list")
    sigs.add_argument("paths", nargs="*", help="for test: a log; for check: signature files")
    sigs.add_argument("--json", action="store_true")
    sigs.add_argument("--signatures", action="append", default=[], metavar="DIR")

    dump = sub.add_parser("dump", help="py-spy dump of a process and all its Python descendants")
    dump.add_argument("--pid", type=int, required=True)
    dump.add_argument("--json", action="store_true")
    dump.add_argument("--native", action="store_true")
    dump.add_argument("--locals", action="store_true")
    dump.add_argument("--timeout", type=float, default=10.0)
    dump.add_argument("--resume-stopped", action="store_true",
                      help="after the dump, send SIGCONT to processes found stopped (state T)")

    replay = sub.add_parser("replay", help="replay a recipe (TUI, or --headless / --matrix / --bisect)",
                            epilog="Exit codes: 0 the outcome matched the recipe's `expect`; 20 it did not; "
                                   "2 bad recipe or missing secret. --matrix and --bisect exit 0 when all runs ran.")
    replay.add_argument("recipe")
    replay.add_argument("--headless", action="store_true")
    replay.add_argument("--matrix", action="store_true", help="the base and every variant, one after another, then a table")
    replay.add_argument("--bisect", nargs=2, metavar=("FLAG", "LOW..HIGH"),
                        help="the largest value of a numeric flag that still reaches healthy, e.g. --bisect max-model-len 1024..32768")
    replay.add_argument("--bisect-step", type=float, default=None, help="granularity of --bisect (default 1 for integers)")
    replay.add_argument("--variant", default=None, help="replay one variant instead of the base")
    replay.add_argument("--port", type=int, default=None, help="fills {port} (default: a free port)")
    replay.add_argument("--python", default=None, help="fills {python} (default: the workbench's own interpreter)")
    replay.add_argument("--json", action="store_true")
    replay.add_argument("--layout", default=argparse.SUPPRESS)
    replay.add_argument("--signatures", action="append", default=[], metavar="DIR")

    record = sub.add_parser("record", help="write a run as a recipe: `-- CMD`, or --session DIR [--run ID]")
    record.add_argument("-o", "--output", required=True, help="the recipe file to write")
    record.add_argument("--session", default=None, help="a session directory or name")
    record.add_argument("--run", default=None, help="which run of the session (default: the last)")
    record.add_argument("--name", default=None)
    record.add_argument("--expect", default=None, help="expected outcome (default: the run's verdict or root cause)")
    record.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")

    recipe = sub.add_parser("recipe", help="recipe tools: `workbench recipe check FILE...`")
    recipe.add_argument("action", choices=["check"])
    recipe.add_argument("files", nargs="+")

    sessions = sub.add_parser("sessions", help="list live and past sessions, newest first")
    sessions.add_argument("--json", action="store_true")

    attach = sub.add_parser("attach", help="join a live (detachable) session: its history, then live; read-only unless --control")
    attach.add_argument("session", nargs="?", default=None, help="name or unique prefix (default: the only live one)")
    attach.add_argument("--control", action="store_true", help="allow commands (relaunch, dump, smoke, stop)")
    attach.add_argument("--follow", action="store_true", help="print the logs and the timeline as they come (no TUI)")
    attach.add_argument("--history", action="store_true", help="print what happened so far and exit")
    attach.add_argument("--lines", type=int, default=200, help="log lines per run shown from the history")
    attach.add_argument("--do", choices=["relaunch", "dump", "smoke", "stop", "kill"], default=None,
                        help="send one command (needs --control)")
    attach.add_argument("--run", default=None, help="the run --do acts on (default: the last)")
    attach.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="with --do relaunch")
    attach.add_argument("--arg", action="append", default=[], metavar="FLAG[=VALUE]",
                        help="with --do relaunch: --arg=--enforce-eager, --arg=--max-model-len=4096, --arg=no:--enforce-eager")
    attach.add_argument("--layout", default=argparse.SUPPRESS)

    stop = sub.add_parser("stop", help="stop a live session: every run, its reaper and its daemon")
    stop.add_argument("session", nargs="?", default=None)

    open_ = sub.add_parser("open", help="reopen a past session read-only in the TUI")
    open_.add_argument("session", help="a session directory, or its name (or a unique prefix) from `workbench sessions`")
    open_.add_argument("--layout", default=argparse.SUPPRESS)

    bundle = sub.add_parser("bundle", help="one .tar.gz of a session for a bug report, with an ISSUE.md")
    bundle.add_argument("session")
    bundle.add_argument("-o", "--output", default=None, help="archive path (default: SESSION.tar.gz here)")

    env = sub.add_parser("env", help="environment report, with the target's Python: `workbench env -- vllm serve ...`")
    env.add_argument("--json", action="store_true")

    from workbench.cli.model import add_model_check
    from workbench.cli.perf import add_perf_commands

    add_model_check(sub)
    add_perf_commands(sub)
    ray = sub.add_parser("attach-ray", help="the vLLM actors and workers of a running Ray cluster, recognised like runs")
    ray.add_argument("address", nargs="?", default=None, help="the Ray cluster (default: the local one, like `ray status`)")
    ray.add_argument("--json", action="store_true")
    ray.add_argument("--all", action="store_true", help="every actor, not only vLLM's")
    ray.add_argument("--follow", default=None, metavar="ACTOR_ID", help="stream one actor's output, recognised")
    ray.add_argument("--lines", type=int, default=2000, help="log lines read per actor")
    ray.add_argument("--show", type=int, default=5, help="log lines shown per actor")
    ray.add_argument("--signatures", action="append", default=[], metavar="DIR")

    sub.add_parser("help", help="this help")
    return parser
