"""Command line: `workbench [run|analyze|sim|demo|signatures|dump|...]`.

Every bad input ends here as one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from .core import verdicts as V
from .core.tomlfile import DataFileError

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
    p.add_argument("--signatures", action="append", default=[], metavar="DIR",
                   help="extra signature files or directories (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="set a variable for the command (NAME= or -NAME unsets)")
    p.add_argument("--cwd", help="working directory of the command")


def _add_detach_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detachable", action="store_true",
                   help="the runs outlive this terminal: the engine runs in a daemon, this face attaches to it")
    p.add_argument("--detach", action="store_true", help="with --detachable: start the session and return at once")


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
    run.add_argument("--layout", default=None, help="TUI layout")
    _add_run_options(run)
    _add_detach_options(run)

    analyze = sub.add_parser("analyze", help="recognise phases, findings and the root cause in logs")
    analyze.add_argument("logs", nargs="+", help="log files, session directories, or - for stdin")
    analyze.add_argument("--json", action="store_true")
    analyze.add_argument("--signatures", action="append", default=[], metavar="DIR")

    sub.add_parser("sim", help="a stand-in for `vllm serve` (no GPU); `workbench sim --list`", add_help=False)

    demo = sub.add_parser("demo", help="the TUI on the simulator")
    demo.add_argument("scenario", nargs="?", default="healthy")
    demo.add_argument("--list", action="store_true", help="list the scenarios")
    demo.add_argument("--layout", default=None)

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
    replay.add_argument("--layout", default=None)
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
    attach.add_argument("--layout", default=None)

    stop = sub.add_parser("stop", help="stop a live session: every run, its reaper and its daemon")
    stop.add_argument("session", nargs="?", default=None)

    open_ = sub.add_parser("open", help="reopen a past session read-only in the TUI")
    open_.add_argument("session", help="a session directory, or its name (or a unique prefix) from `workbench sessions`")
    open_.add_argument("--layout", default=None)

    bundle = sub.add_parser("bundle", help="one .tar.gz of a session for a bug report, with an ISSUE.md")
    bundle.add_argument("session")
    bundle.add_argument("-o", "--output", default=None, help="archive path (default: SESSION.tar.gz here)")

    env = sub.add_parser("env", help="environment report, with the target's Python: `workbench env -- vllm serve ...`")
    env.add_argument("--json", action="store_true")

    sub.add_parser("help", help="this help")
    return parser


def _env_delta(items: list[str]) -> dict[str, str | None]:
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


def _knowledge_base(dirs: list[str]):
    from .core.signatures import load_knowledge_base

    return load_knowledge_base([Path(d) for d in dirs])


def _settings(args: argparse.Namespace):
    from .core.settings import Settings

    settings = Settings()
    if args.stall_window is not None:
        settings.stall_window = args.stall_window
    if args.startup_timeout is not None:
        settings.startup_timeout = args.startup_timeout
    settings.smoke = not args.no_smoke
    return settings


def cmd_run(args: argparse.Namespace, command: list[str]) -> int:
    if not command:
        raise UsageError("workbench run: give the command after --, e.g. workbench run --headless -- vllm serve MODEL")
    kb = _knowledge_base(args.signatures)
    settings = _settings(args)
    if args.detachable or args.detach:
        return _detachable(command, args, settings, args.signatures, _env_delta(args.env), args.cwd,
                           args.session_dir, headless=args.headless)
    if args.headless:
        from .headless import HeadlessOptions, run_headless

        options = HeadlessOptions(
            json=args.json, raw=args.raw, force=args.force, serve=args.serve, stop_after=args.stop_after,
            session_dir=args.session_dir, quiet=args.quiet, env_delta=_env_delta(args.env), cwd=args.cwd,
        )
        return run_headless(command, options, settings, kb)
    return _tui(command, args.layout, kb, settings, args.session_dir, _env_delta(args.env))


def _tui(command: list[str], layout: str | None, kb, settings, session_dir: str | None,
         env_delta: dict[str, str | None] | None = None, matrix=None) -> int:
    try:
        from .ui.app import run_app
        from .ui.layouts import load_layout
    except ImportError as exc:
        raise UsageError(f"the TUI is not available: {exc}") from None
    load_layout(layout or "single")  # a bad layout is refused before anything is launched
    return run_app(command, layout=layout, kb=kb, settings=settings, session_dir=session_dir, env_delta=env_delta,
                   matrix=matrix)


def _detachable(command: list[str], args: argparse.Namespace, settings, signatures: list[str],
                env_delta: dict[str, str | None], cwd: str | None, session_dir: str | None,
                headless: bool) -> int:
    """Start the session's daemon, then attach this terminal to it as the controlling face."""
    from .core.detach import start_daemon

    if not command:
        raise UsageError("workbench --detachable: give the command after --")
    live = start_daemon(command, env_delta, cwd, settings, signatures, session_dir)
    if args.detach:
        sys.stdout.write(f"{live.name}\n")
        sys.stderr.write(f"detached session {live.name} (daemon PID {live.pid}): "
                         f"workbench attach {live.name} [--control]; workbench stop {live.name}\n")
        return 0
    return _attach(live.name, control=True, follow=headless, layout=getattr(args, "layout", None))


def _attach(session: str | None, control: bool, follow: bool, layout: str | None) -> int:
    """The TUI as a client when there is one and a terminal to draw it on, else the printer."""
    from .pairing import attach_cli

    if not follow and sys.stdout.isatty():
        try:
            from .ui.remote import run_remote_app
        except ImportError:
            pass
        else:
            return run_remote_app(session, control=control, layout=layout)
    return attach_cli(session, control, None, None, {}, {}, history=False, follow_live=True)


def cmd_attach(args: argparse.Namespace) -> int:
    from .pairing import attach_cli, parse_arg_delta

    if args.do is None and not args.history and not args.follow:
        return _attach(args.session, args.control, follow=False, layout=args.layout)
    return attach_cli(args.session, args.control, args.do, args.run, _env_delta(args.env),
                      parse_arg_delta(args.arg), args.history, args.follow, args.lines)


def cmd_stop(args: argparse.Namespace) -> int:
    from .pairing import stop_cli

    return stop_cli(args.session)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .core.analyze import LogInputError, analyze_path
    from .core.diagnosis import Recogniser

    recogniser = Recogniser(_knowledge_base(args.signatures))
    results = []
    try:
        for path in args.logs:
            results.extend(analyze_path(path, recogniser))
    except LogInputError as exc:
        sys.stderr.write(f"workbench analyze: error: {exc}\n")
        return V.EXIT_USAGE
    dicts = [r.to_dict() for r in results]
    if args.json:
        sys.stdout.write(json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=None) + "\n")
    else:
        from .headless import summary_text  # the engine and httpx: not needed for --json

        for d in dicts:
            sys.stdout.write(f"== {d['source']} ({d['lines']} lines)\n")
            sys.stdout.write(summary_text({**d, "reason": _analysis_reason(d)}, sys.stdout.isatty()))
    worst = max((V.EXIT_CODES[d["verdict"]] for d in dicts), default=0)
    return worst


def _analysis_reason(d: dict) -> str:
    return f"last phase reached: {d['last_phase']}; {len(d['findings'])} finding(s)"


def cmd_compare(args: argparse.Namespace) -> int:
    from .core.analyze import LogInputError, analyze_path
    from .core.compare import compare
    from .core.diagnosis import Recogniser

    recogniser = Recogniser(_knowledge_base(args.signatures))
    results = []
    for path in (args.first, args.second):
        target = Path(path) / "output.log" if (Path(path) / "output.log").exists() else Path(path)
        try:
            results.append(analyze_path(str(target), recogniser)[-1].to_dict())
        except LogInputError as exc:
            sys.stderr.write(f"workbench compare: error: {exc}\n")
            return V.EXIT_USAGE
    report = compare(results[0], results[1], args.first, args.second)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    for name in (args.first, args.second):
        row = report[name]
        sys.stdout.write(f"{name}: {row['verdict']}, last phase {row['last_phase']}, root cause {row['root_cause']}\n")
    for name in (args.first, args.second):
        if report["phases_only_in"][name] or report["findings_only_in"][name]:
            sys.stdout.write(f"only in {name}: phases {report['phases_only_in'][name]}, findings {report['findings_only_in'][name]}\n")
    sys.stdout.write(f"conclusion: {report['conclusion']}\n")
    return 0


def cmd_signatures(args: argparse.Namespace) -> int:
    from .core import signatures as S

    kb = _knowledge_base(args.signatures)
    if args.action == "check":
        for path in args.paths:
            S.load_file(Path(path))
            sys.stdout.write(f"{path}: ok\n")
        return 0
    if args.action == "export":
        # one pattern per line: `grep -E -f` compatible for the patterns that are plain ERE
        for sig in kb.signatures:
            for pattern in sig.patterns:
                sys.stdout.write(pattern + "\n")
        return 0
    if args.action == "test":
        if not args.paths:
            raise UsageError("workbench signatures test LOG: name a log file")
        return _signatures_test(kb, args.paths, args.json)
    if args.json:
        sys.stdout.write(json.dumps([s.to_dict() for s in kb.signatures], indent=2) + "\n")
        return 0
    width = max((len(s.id) for s in kb.signatures), default=10)
    for sig in sorted(kb.signatures, key=lambda s: (s.origin, s.id)):
        flags = " cascade" if sig.cascade else (" benign" if sig.benign else "")
        source = sig.sources[0] if sig.sources else ""
        sys.stdout.write(f"{sig.id:<{width}}  {sig.severity:<7}{flags:<8}  {sig.title}  [{source}]\n")
    sys.stdout.write(f"{len(kb.signatures)} signatures, {len(kb.phase_markers)} phase markers from {len(kb.files)} files\n")
    return 0


def _signatures_test(kb, paths: list[str], as_json: bool) -> int:
    from .core.analyze import LogInputError
    from .core.diagnosis import Recogniser
    from .core.linesplit import LineSplitter
    from .core.text import display_lines

    recogniser = Recogniser(kb)
    hits: dict[str, list[tuple[int, str]]] = {}
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise LogInputError(f"{path}: cannot read ({exc.strerror})") from None
        splitter = LineSplitter()
        _s, raw = splitter.feed(data)
        raw += splitter.flush()[1]
        lines = display_lines(raw)
        for index, pattern_index in recogniser.matcher.scan(lines):
            kind, target = recogniser.targets[pattern_index]
            name = target.id if kind == "signature" else f"{kind}:{target}"
            hits.setdefault(name, []).append((index + 1, lines[index]))
    if as_json:
        sys.stdout.write(json.dumps({k: [{"line": n, "text": t} for n, t in v] for k, v in hits.items()}) + "\n")
        return 0
    for name in sorted(hits):
        sys.stdout.write(f"{name}: {len(hits[name])} line(s)\n")
        for number, text in hits[name][:5]:
            sys.stdout.write(f"  {number}: {text[:160]}\n")
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    from .core.procs import tree
    from .core.stacks import dump_tree, format_dumps, python_dumps

    pids = [p.pid for p in tree(args.pid)]
    if not pids:
        sys.stderr.write(f"workbench dump: error: no process with PID {args.pid}\n")
        return V.EXIT_USAGE
    dumps = python_dumps(dump_tree(pids, args.native, args.locals, args.timeout))
    if args.json:
        sys.stdout.write(json.dumps([d.to_dict() for d in dumps]) + "\n")
    else:
        sys.stdout.write(format_dumps(dumps))
    return 0 if any(d.ok for d in dumps) else 1


def cmd_recipe_check(args: argparse.Namespace) -> int:
    from .core.recipe import load_recipe

    bad = 0
    for path in args.files:
        try:
            recipe = load_recipe(path)
        except DataFileError as exc:
            sys.stderr.write(f"workbench: error: {exc}\n")
            bad += 1
            continue
        sys.stdout.write(f"{path}: ok ({recipe.name}: {len(recipe.variants)} variant(s), expect {recipe.expect})\n")
    return V.EXIT_USAGE if bad else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .core.recipe import load_recipe
    from .replay import (
        EXIT_MISMATCH,
        RecipeError,
        attempts_table,
        bisect_limit,
        check_replayable,
        parse_range,
        print_line,
        recipe_settings,
        replay_once,
        run_matrix,
    )

    recipe = load_recipe(args.recipe)
    kb = _knowledge_base(args.signatures)
    settings = _settings_default()
    try:
        if args.matrix and not (args.headless or args.json) and sys.stdout.isatty():
            check_replayable(recipe)  # a missing secret is said here, not inside the TUI
            return _tui([], args.layout, kb, recipe_settings(recipe, settings), None, matrix=(recipe, args.python))
        if args.matrix or args.bisect:
            attempts = []

            def progress(attempt) -> None:
                attempts.append(attempt)
                if not args.json:
                    row = attempt.row()
                    print_line(f"{row['variant']:<18} {row['change'] or '-':<34} {row['verdict']} "
                               f"({row['root_cause'] or row['phase']}, {row['seconds'] or 0:.1f}s)")

            if args.matrix:
                attempts, conclusion = run_matrix(recipe, settings, kb, progress, args.python)
                if args.json:
                    sys.stdout.write(json.dumps({"recipe": recipe.name, "runs": [a.row() for a in attempts],
                                                 "conclusion": conclusion}) + "\n")
                else:
                    sys.stdout.write("\n" + attempts_table(attempts) + f"\nconclusion: {conclusion}\n")
                return 0
            flag, span = args.bisect
            flag = flag if flag.startswith("-") else "--" + flag  # `max-model-len`: argparse eats a leading --
            try:
                low, high, is_int = parse_range(span)
            except ValueError as exc:
                raise UsageError(f"workbench replay --bisect: {exc}") from None
            answer, probes = bisect_limit(recipe, settings, kb, flag, low, high, is_int, args.bisect_step, progress,
                                          args.python)
            shown = None if answer is None else (int(answer) if is_int else answer)
            if args.json:
                sys.stdout.write(json.dumps({"recipe": recipe.name, "flag": flag, "answer": shown,
                                             "probes": [a.row() for a in probes]}) + "\n")
            elif shown is None:
                sys.stdout.write(f"\n{flag}: not healthy even at {span.split('..')[0]}\n")
            else:
                sys.stdout.write(f"\n{flag}: the largest healthy value is {shown} ({len(probes)} probes)\n")
            return 0
        if not args.headless:
            argv, env, _cwd = recipe.resolve(args.variant, args.port or _free_port(), python=args.python)
            return _tui(argv, args.layout, kb, settings, None, env)
        attempt = replay_once(recipe, settings, kb, args.variant, port=args.port, quiet=False, stream=sys.stdout,
                              python=args.python)
    except RecipeError as exc:
        raise UsageError(f"workbench: {exc}") from None
    result = attempt.result
    if args.json:
        sys.stdout.write(json.dumps({**attempt.row(), "expect": recipe.expect, "matched": attempt.matched,
                                     "smokes": attempt.smokes}) + "\n")
    else:
        sys.stdout.write(f"recipe {recipe.name}: expected {recipe.expect}, got {result.get('verdict')}"
                         f"{' (' + (result.get('root_cause') or {}).get('id', '') + ')' if result.get('root_cause') else ''}"
                         f": {'matched' if attempt.matched else 'NOT matched'}\n")
    return 0 if attempt.matched else EXIT_MISMATCH


def _settings_default():
    from .core.settings import Settings

    return Settings()


def cmd_record(args: argparse.Namespace, command: list[str]) -> int:
    from .core.recipe import recipe_from_run, recipe_toml
    from .core.session import read_events, write_private

    if command:
        recipe = recipe_from_run(args.name or Path(args.output).stem, command, _env_delta(args.env), None,
                                 expect=args.expect or "healthy")
    elif args.session:
        directory = _session_path(args.session)
        started = [e for e in read_events(directory) if e.get("kind") == "run_started"]
        if args.run:
            started = [e for e in started if e.get("run") == args.run]
        if not started:
            raise UsageError(f"workbench record: no run {args.run or ''} in {directory}")
        event = started[-1]
        recorded = directory / "runs" / event["run"] / "recipe.toml"
        if recorded.exists() and not args.expect and not args.name:
            write_private(Path(args.output), recorded.read_text())
            sys.stdout.write(f"{args.output}\n")
            return 0
        summary_path = directory / "runs" / event["run"] / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        expect = args.expect or ((summary.get("root_cause") or {}).get("id") or summary.get("verdict") or "healthy")
        recipe = recipe_from_run(args.name or Path(args.output).stem, event.get("argv", []),
                                 event.get("env_delta", {}), event.get("cwd"), expect=expect)
    else:
        raise UsageError("workbench record: give `-- CMD ...` or --session DIR")
    write_private(Path(args.output), recipe_toml(recipe))
    sys.stdout.write(f"{args.output}\n")
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    from .core.recorded import list_sessions
    from .pairing import live_names

    found = list_sessions()
    live = live_names()
    if args.json:
        sys.stdout.write(json.dumps([{"path": str(s.path), "started": s.started, "command": s.command,
                                      "live": s.path.resolve() in live,
                                      "runs": [{"run": r, "verdict": v} for r, v in s.runs]} for s in found]) + "\n")
        return 0
    for info in found:
        runs = " ".join(f"{r}:{v or '?'}" for r, v in info.runs)
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started))
        mark = "live" if info.path.resolve() in live else "    "
        sys.stdout.write(f"{info.path.name:<40} {mark} {stamp}  {runs:<30} {info.command[:60]}\n")
    if not found:
        sys.stdout.write("no sessions yet\n")
    return 0


def _session_path(name: str) -> Path:
    from .core.recorded import resolve_session

    try:
        return resolve_session(name)
    except FileNotFoundError as exc:
        raise UsageError(f"workbench: {exc}") from None


def cmd_open(args: argparse.Namespace) -> int:
    from .core.recorded import load_dumps, load_runs
    from .ui.app import make_app

    directory = _session_path(args.session)
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
    from .core.bundle import bundle_session

    directory = _session_path(args.session)
    out = bundle_session(directory, Path(args.output) if args.output else None)
    sys.stdout.write(f"{out}\n")
    return 0


def cmd_env(args: argparse.Namespace, command: list[str]) -> int:
    from .core.envreport import environment_report, report_text

    report = environment_report(command or ["vllm"])
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else report_text(report))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.list:
        from .sim.cli import main as sim_main

        return sim_main(["--list"])
    command = [sys.executable, "-m", "workbench.sim", args.scenario, "--port", str(_free_port())]
    from .core.settings import Settings

    return _tui(command, args.layout, _knowledge_base([]), Settings(), None)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _attach_errors() -> tuple[type[Exception], ...]:
    from .core.attach_client import AttachError
    from .core.protocol import ProtocolError

    return AttachError, ProtocolError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sim":
        from .sim.cli import main as sim_main

        return sim_main(argv[1:])
    options, command = split_command(argv)
    parser = build_parser()
    try:
        if options[:1] == ["help"] or (not options and not command):
            parser.print_help()
            return 0
        args, extra = parser.parse_known_args(options)
        if extra and getattr(args, "command", None) == "signatures" and not any(e.startswith("-") for e in extra):
            args.paths += extra  # `signatures test --signatures DIR LOG`: argparse stops at the option
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.version:
            from . import __version__

            sys.stdout.write(f"workbench {__version__}\n")
            return 0
        if args.command is None:
            if not command:
                parser.print_help()
                return 0
            from .core.settings import Settings

            if args.detachable or args.detach:
                return _detachable(command, args, Settings(), [], {}, None, None, headless=False)
            return _tui(command, args.layout, _knowledge_base([]), Settings(), None)
        if args.command == "run":
            return cmd_run(args, command)
        if args.command == "env":
            return cmd_env(args, command)
        if args.command == "record":
            return cmd_record(args, command)
        if command:
            raise UsageError(f"workbench {args.command}: takes no command after --")
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "signatures":
            return cmd_signatures(args)
        if args.command == "dump":
            return cmd_dump(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "sessions":
            return cmd_sessions(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "recipe":
            return cmd_recipe_check(args)
        if args.command == "open":
            return cmd_open(args)
        if args.command == "bundle":
            return cmd_bundle(args)
        if args.command == "attach":
            return cmd_attach(args)
        if args.command == "stop":
            return cmd_stop(args)
        parser.print_help()
        return 0
    except UsageError as exc:
        sys.stderr.write(f"{exc}\n")
        return V.EXIT_USAGE
    except DataFileError as exc:
        sys.stderr.write(f"workbench: error: {exc}\n")
        return V.EXIT_USAGE
    except _attach_errors() as exc:
        sys.stderr.write(f"workbench: {exc}\n")
        return V.EXIT_USAGE
    except KeyboardInterrupt:
        return V.EXIT_INTERRUPTED
    except BrokenPipeError:  # `workbench analyze LOG | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
