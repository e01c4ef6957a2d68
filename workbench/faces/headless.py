"""The headless face: `workbench run --headless -- CMD`, for CI and bug reports.

It launches the command under the engine, streams its output with recognised lines marked and
phase changes announced, waits for the verdict, stops the tree and prints a summary (or one JSON
object with `--json`). A printer thread pulls lines from the log store, so a slow terminal never
slows the child.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from workbench.core.engine.engine import Engine, session_for
from workbench.core.engine.events import (
    Message,
    Notice,
    PhaseChanged,
    ProcessExited,
    Ready,
    SmokeResult,
    StacksDumped,
    Verdict,
    VerdictChanged,
)
from workbench.core.engine.run import Run
from workbench.core.engine.settings import Settings
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.phases import PHASE_TITLES
from workbench.core.knowledge.signatures import KnowledgeBase
from workbench.core.logs.text import sanitize
from workbench.core.process.preflight import run_preflight
from workbench.core.process.sched import lower_thread_priority
from workbench.core.secrets import mask_argv

MARKS = {"error": "✖", "warning": "▲", "info": "•", "benign": "·"}
COLOURS = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "info": "\x1b[36m", "benign": "\x1b[2m", "phase": "\x1b[1;35m"}
RESET = "\x1b[0m"


@dataclass
class HeadlessOptions:
    json: bool = False
    raw: bool = False
    force: bool = False
    serve: bool = False
    stop_after: float = 0.0
    session_dir: str | None = None
    quiet: bool = False
    env_delta: dict[str, str | None] | None = None
    cwd: str | None = None
    strict: bool = False  # model-folder errors refuse the launch like a taken port
    # a recipe's own checks once healthy: returns why the run is not healthy after all, or None
    on_healthy: Callable[[Run], str | None] | None = None
    result_sink: Callable[[dict], None] | None = None  # gets the result object (replay, matrix)


class Printer:
    """Pulls new lines from a run's store and prints them with marks."""

    def __init__(self, run: Run, out: TextIO, colour: bool, raw: bool, quiet: bool) -> None:
        self.run = run
        self.out = out
        self.colour = colour
        self.raw = raw
        self.quiet = quiet
        self.next_seq = 0
        self._raw_offset = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._notes: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="wb-printer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def note(self, text: str, kind: str = "phase") -> None:
        # notes quote what the server answered (a smoke error body): neutralise it like the log
        with self._lock:
            self._notes.append(self._paint(f"── {sanitize(text)}", kind))

    def _paint(self, text: str, kind: str) -> str:
        if not self.colour or kind not in COLOURS:
            return text
        return f"{COLOURS[kind]}{text}{RESET}"

    def _loop(self) -> None:
        lower_thread_priority()
        while not self._stop.wait(0.05):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
            if self.quiet:
                for note in notes:
                    self.out.write(note + "\n")
                self.out.flush()
                return
            if self.raw:
                self._flush_raw()
            else:
                self._flush_lines()
            for note in notes:
                self.out.write(note + "\n")
            try:
                self.out.flush()
            except (BrokenPipeError, ValueError):
                pass

    def _flush_lines(self) -> None:
        store = self.run.store
        end = len(store)
        marks = self.run.diagnosis.marks
        while self.next_seq < end:
            first = self.next_seq
            stop = min(end, first + 5000)
            lines = store.lines(first, stop)
            if not self.run.diagnosis.has_marks_between(first, stop):  # the common case: one join, no Python work per line
                self.out.write("  " + "\n  ".join(lines) + "\n")
            else:
                chunk = []
                for offset, line in enumerate(lines):
                    mark = marks.get(first + offset)
                    chunk.append("  " + line if mark is None else self._paint(f"{MARKS[mark]} {line}", mark))
                self.out.write("\n".join(chunk) + "\n")
            self.next_seq = stop

    def _flush_raw(self) -> None:
        # --raw: the child's bytes as they came, escape sequences and all
        size = self.run.store.bytes_written
        if size <= self._raw_offset:
            return
        with open(self.run.store.path, "rb") as handle:
            handle.seek(self._raw_offset)
            data = handle.read(size - self._raw_offset)
        self._raw_offset += len(data)
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            self.out.write(data.decode("utf-8", "replace"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.flush()


def _describe_event(event: Message) -> tuple[str, str] | None:
    if isinstance(event, PhaseChanged):
        return f"phase: {PHASE_TITLES.get(event.phase, event.phase)} (+{event.elapsed:.1f} s)", "phase"
    if isinstance(event, Ready):
        return f"ready: {event.url} answered GET /v1/models after {event.elapsed:.1f} s", "phase"
    if isinstance(event, SmokeResult):
        if event.ok:
            return f"smoke: {event.endpoint} → {event.status} in {event.latency:.2f} s: {event.output[:60]!r}", "phase"
        return f"smoke FAILED: {event.endpoint} → {event.status}: {event.error[:200]}", "error"
    if isinstance(event, VerdictChanged):
        return f"verdict changed: {event.previous} → {event.verdict.upper()}: {event.reason}", "error"
    if isinstance(event, StacksDumped):
        return f"stacks: {event.summary} → {event.path}", "warning"
    if isinstance(event, Notice):
        return f"{event.level}: {event.text}", "warning" if event.level != "info" else "info"
    if isinstance(event, ProcessExited):
        how = f"signal {event.signal}" if event.signal else f"code {event.returncode}"
        return f"process exited ({how}) after {event.elapsed:.1f} s", "warning"
    return None


def summary_text(result: dict, colour: bool) -> str:
    verdict = result["verdict"]
    paint = COLOURS["error"] if verdict != V.HEALTHY else "\x1b[1;32m"
    head = f"verdict: {verdict.upper()}"
    lines = [(paint + head + RESET) if colour else head, f"  {result.get('reason', '')}"]
    stuck = result.get("stuck") or {}
    if stuck.get("summary") and (verdict == V.HUNG or stuck.get("stuck")):  # where it is stuck, from the stacks (knowledge/stuck.py)
        lines.extend(f"  {'stuck: ' if i == 0 else '  '}{line}" for i, line in enumerate(stuck["summary"][:6]))
    root = result.get("root_cause")
    if root:
        lines.append(f"root cause: {root['title']}  [{root['id']}]")
        lines.append(f"  line {root['seq'] + 1}: {root['line'][:300]}")
        if root.get("why"):
            lines.append(f"  why: {root['why']}")
        for i, action in enumerate(root.get("actions", []), 1):
            delta = ""
            if action.get("arg_delta") or action.get("env_delta"):
                delta = "  (applies: " + json.dumps({**action.get("arg_delta", {}), **action.get("env_delta", {})}) + ")"
            lines.append(f"  try {i}: {action['text']}{delta}")
    phases = result.get("phases") or []
    if phases:
        lines.append("phases: " + " → ".join(f"{p['name']} {p['seconds'] or 0:.1f}s" for p in phases))
    others = [f for f in result.get("findings", []) if not root or f["id"] != root["id"] or f["title"] != root["title"]]
    if others:
        lines.append("other findings:")
        for f in others[:15]:
            tag = " (cascade)" if f["cascade"] else (" (benign here)" if f["benign"] else "")
            lines.append(f"  {f['severity']:<7} {f['title'][:100]} ×{f['count']}{tag}")
            if f.get("note") and f["note"] not in ("benign", "benign here", "exception", "error record"):
                lines.append(f"          {f['note'][:200]}")
    history = result.get("history") or []
    if len(history) > 1:
        lines.append("verdicts:")
    for entry in history if len(history) > 1 else []:
        lines.append(f"  at +{entry['elapsed']:.1f} s: {entry['verdict']} — {entry['reason'][:200]}")
    if result.get("session_dir"):
        lines.append(f"session: {result['session_dir']}")
    return "\n".join(lines) + "\n"


class _Signals:
    """SIGINT/SIGTERM/SIGHUP end the wait; the runs are then stopped like on any exit."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.event = threading.Event()
        self._old: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum
        self.event.set()

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run_headless(argv: list[str], options: HeadlessOptions, settings: Settings, kb: KnowledgeBase) -> int:
    err = sys.stderr
    log_out = sys.stderr if options.json else sys.stdout
    colour = log_out.isatty() and not os.environ.get("NO_COLOR")
    env = {**os.environ}
    for name, value in (options.env_delta or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    check = run_preflight(argv, env, options.cwd, options.strict)
    for warning in check.warnings:
        err.write(f"workbench: warning: {warning}\n")
    if check.fatal:
        for problem in check.fatal:
            err.write(f"workbench: error: {problem}\n")
        return V.EXIT_USAGE
    if check.problems:
        for problem in check.problems:
            err.write(f"workbench: {'warning' if options.force else 'error'}: {problem}\n")
        if not options.force:
            err.write("workbench: not launching (use --force to launch anyway)\n")
            if options.json:
                sys.stdout.write(json.dumps({
                    "verdict": None, "exit_code": V.EXIT_PREFLIGHT, "preflight": check.problems,
                    "holders": [h.__dict__ for h in check.holders], "root_cause": None, "phases": [],
                    "findings": [],
                }) + "\n")
            return V.EXIT_PREFLIGHT

    session = session_for(options.session_dir, name=os.path.basename(argv[0]))
    engine = Engine(session, kb, settings)
    if check.model_check is not None:
        session.write_json("model_check.json", check.model_check)
    done = threading.Event()
    changed = threading.Event()  # the VerdictChanged event has reached the printer
    printer: Printer | None = None

    def on_event(event: Message) -> None:
        described = _describe_event(event)
        if described and printer is not None:
            printer.note(*described)
        if isinstance(event, (Verdict, ProcessExited)):
            done.set()
        if isinstance(event, VerdictChanged):
            changed.set()

    engine.bus.subscribe(on_event)
    with _Signals() as signals:
        try:
            run = engine.launch(argv, options.env_delta, options.cwd, cause="headless")
        except OSError as exc:
            err.write(f"workbench: error: cannot start {argv[0]}: {exc}\n")
            engine.shutdown()
            return V.EXIT_USAGE
        printer = Printer(run, log_out, colour, options.raw, options.quiet)
        printer.start()
        err.write(f"workbench: launched PID {run.pid}; session {session.dir}\n")
        while not done.is_set() and not signals.event.is_set():
            signals.event.wait(0.1)
            if run.verdict is not None:
                break
        if run.verdict == V.HEALTHY and options.on_healthy is not None and not signals.event.is_set():
            failure = options.on_healthy(run)
            if failure:
                run.verdict, run.verdict_reason = V.FALSE_READY, failure
                printer.note(f"recipe smoke failed: {failure}", "error")
        if run.verdict == V.HEALTHY and not signals.event.is_set():
            # the verdict can still change while it serves (engine death, a stall): that ends the wait
            if options.serve:
                err.write("workbench: serving; Ctrl-C stops\n")
                while run.alive and run.verdict == V.HEALTHY and not signals.event.wait(0.1):
                    pass
                if not run.alive:  # it ended by itself: let the watcher judge how before we stop anything
                    engine.watchers[run.id].join(timeout=5)
                if run.verdict != V.HEALTHY:
                    changed.wait(timeout=5)  # the verdict is set just before its event is published
            elif options.stop_after > 0:
                deadline = time.monotonic() + options.stop_after
                while run.verdict == V.HEALTHY and not signals.event.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                    if time.monotonic() >= deadline:
                        break
        interrupted = signals.received
        if run.alive:
            engine.stop(run.id, cause="interrupted" if interrupted else "verdict reached")
        run.exited.wait(timeout=5)
        run.reader_done.wait(timeout=3)
        printer.close()
        result = run.summary()
        result["session_dir"] = str(session.dir)
        result["command"] = mask_argv(argv)  # the result is saved in the session
        if interrupted and run.verdict in (None, V.EXITED):
            result["verdict"] = result["verdict"] or V.EXITED
            result["reason"] = f"interrupted by signal {interrupted}"
        code = V.EXIT_INTERRUPTED if interrupted and run.verdict in (None, V.EXITED) else V.EXIT_CODES.get(result["verdict"] or V.EXITED, 13)
        result["exit_code"] = code
        engine.session.write_json(f"runs/{run.id}/result.json", result)
        engine.shutdown()
    if options.result_sink is not None:
        options.result_sink(result)
    if options.json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    else:
        log_out.write(summary_text(result, colour))
    sys.stdout.flush()
    time.sleep(0)  # let the reaper's pipe close before we exit
    return code
