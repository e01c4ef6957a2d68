"""The headless face over nodes: `run --headless --on HOST -- CMD` and `run --headless --cluster FILE`.

Each node runs its own engine (the agent over ssh); this face connects to all of them, runs each
node's preflight and compares versions across nodes, starts the commands head first, prints every
node's log with its name, and reaches one verdict for the whole: a failure anywhere fails it, with
the earliest non-cascade error across nodes (on our clock: each node's skew is measured at
connect) as the root cause, named with its node; a hang anywhere dumps the stacks of every node in
parallel and names the stuck node. The session (events, logs, dumps, result) is kept here.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from workbench.core.engine.engine import session_for
from workbench.core.engine.events import Message, ProcessExited, Verdict
from workbench.core.engine.run import Run
from workbench.core.engine.settings import Settings
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.signatures import KnowledgeBase
from workbench.core.record.session import Session
from workbench.core.remote.attach_client import AttachError
from workbench.core.remote.cluster_engine import cross_node_root_cause
from workbench.core.remote.node_engine import NodeEngine, NodeSpec, connect_node
from workbench.core.remote.nodecheck import version_mismatches
from workbench.core.secrets import mask_argv
from workbench.faces.headless import (
    HeadlessOptions,
    Printer,
    _describe_event,
    _Signals,
    summary_text,
)

FAILING = (V.FAILED, V.FALSE_READY)
FAILURE_GRACE = 3.0  # seconds the other nodes get to reach their own verdicts after one fails


@dataclass
class NodeLaunch:
    node: NodeSpec
    argv: list[str]
    env_delta: dict[str, str | None] = field(default_factory=dict)
    until_exit: bool = False  # a preparation step (`ray start`): it must end with code 0


class PrefixWriter:
    """A text stream that puts the node's name before every line (one merged log)."""

    def __init__(self, out: TextIO, name: str, lock: threading.Lock) -> None:
        self.out, self.prefix, self.lock = out, f"[{name}] ", lock
        self._partial = ""

    def write(self, text: str) -> int:
        with self.lock:
            text = self._partial + text
            *lines, self._partial = text.split("\n")
            if lines:
                self.out.write("".join(self.prefix + line + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.out.flush()

    def isatty(self) -> bool:
        return False


def _parallel(func: Any, items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(func, items))


def cluster_verdict(runs: dict[str, Run], head: str,
                    last_output: dict[str, float] | None = None) -> tuple[str, str, list[str]] | None:
    """(verdict, reason, nodes at fault) once the whole can be judged, else None.

    In a hang the ranks that wait for the stuck one often stall too (or only print that they
    wait); the stuck node is the one that has been silent the longest."""
    failed = [n for n, r in runs.items() if r.verdict in FAILING
              or (r.verdict == V.EXITED and not r.stopping and (r.returncode != 0 or r.exit_signal))]
    if failed:
        return V.FAILED, "failed on " + ", ".join(f"{n} ({runs[n].verdict_reason})" for n in failed), failed
    hung = [n for n, r in runs.items() if r.verdict == V.HUNG]
    if hung:
        silent = dict.fromkeys(runs, 0.0) | (last_output or {})
        stuck = min((n for n, r in runs.items() if r.verdict in (None, V.HUNG)), key=lambda n: silent[n])
        waiting = [n for n in runs if n != stuck]
        return V.HUNG, (f"stuck on {stuck} (silent the longest)" + (f"; {', '.join(waiting)} waiting" if waiting else "")
                        + f": {runs[hung[0]].verdict_reason}"), [stuck]
    if all(r.verdict == V.EXITED for r in runs.values()):  # a check that ends (comm-check): code 0 everywhere
        return V.EXITED, "every node's command ended with code 0", []
    if runs[head].verdict == V.HEALTHY and all(r.alive or r.verdict == V.HEALTHY for r in runs.values()):
        return V.HEALTHY, f"{head}: {runs[head].verdict_reason}", []
    return None


def connect_nodes(nodes: list[NodeSpec], session: Session, kb: KnowledgeBase, settings: Settings,
             err: TextIO) -> dict[str, NodeEngine] | None:
    def one(node: NodeSpec) -> NodeEngine | str:
        try:
            return connect_node(node, Session(session.dir / "nodes" / node.name, name=node.name), kb, settings)
        except AttachError as exc:
            return str(exc)

    results = _parallel(one, nodes)
    failures = [r for r in results if isinstance(r, str)]
    engines = {e.name: e for e in results if isinstance(e, NodeEngine)}
    if failures:
        for text in failures:
            err.write(f"workbench: error: {text}\n")
        _parallel(lambda e: e.shutdown(), list(engines.values()))
        return None
    for name, engine in engines.items():
        err.write(f"workbench: {name}: agent on {engine.node.welcome.get('host', '?')} "
                  f"(clock skew {engine.node.skew:+.3f} s, round trip {engine.node.round_trip * 1000:.0f} ms)\n")
    return engines


def preflight_nodes(engines: dict[str, NodeEngine], launches: list[NodeLaunch], force: bool, err: TextIO) -> bool:
    def one(launch: NodeLaunch) -> tuple[str, dict[str, Any]]:
        name = launch.node.name
        try:
            return name, engines[name].node.preflight(launch.argv, {**launch.node.env, **launch.env_delta}, None)
        except AttachError as exc:
            return name, {"fatal": [f"preflight failed: {exc}"]}

    answers = dict(_parallel(one, [launch for launch in launches if not launch.until_exit]))
    problems = [f"{n}: {p}" for n, a in answers.items() for p in a.get("problems", [])]
    problems += version_mismatches({n: a.get("versions", {}) for n, a in answers.items()})
    fatal = [f"{n}: {p}" for n, a in answers.items() for p in a.get("fatal", [])]
    for name, answer in answers.items():
        for warning in answer.get("warnings", []):
            err.write(f"workbench: warning: {name}: {warning}\n")
    for line in fatal:
        err.write(f"workbench: error: {line}\n")
    for line in problems:
        err.write(f"workbench: {'warning' if force else 'error'}: {line}\n")
    if fatal or (problems and not force):
        if problems and not fatal:
            err.write("workbench: not launching (use --force to launch anyway)\n")
        return False
    return True


def run_headless_nodes(launches: list[NodeLaunch], options: HeadlessOptions, settings: Settings,
                       kb: KnowledgeBase, name: str = "cluster") -> int:
    err = sys.stderr
    out = sys.stderr if options.json else sys.stdout
    session = session_for(options.session_dir, name=name)
    nodes = list({launch.node.name: launch.node for launch in launches}.values())
    engines = connect_nodes(nodes, session, kb, settings, err)
    if engines is None:
        session.close()
        return V.EXIT_USAGE
    main = [launch for launch in launches if not launch.until_exit]
    head = main[0].node.name
    if not preflight_nodes(engines, launches, options.force, err):
        _parallel(lambda e: e.shutdown(), list(engines.values()))
        session.close()
        return V.EXIT_PREFLIGHT
    lock = threading.Lock()
    decided = threading.Event()
    printers: list[Printer] = []
    runs: dict[str, Run] = {}

    def watch(writer: PrefixWriter):
        def on_event(event: Message) -> None:
            described = _describe_event(event)
            printer = next((p for p in printers if p.out is writer), None)
            # one node may run a preparation step and the command: each printer notes its own run
            if described and printer is not None and getattr(event, "run", "") in ("", printer.run.id):
                printer.note(*described)
            if isinstance(event, (Verdict, ProcessExited)):
                decided.set()
        return on_event

    with _Signals() as signals:
        verdict = reason = None
        at_fault: list[str] = []
        for launch in launches:
            engine = engines[launch.node.name]
            writer = PrefixWriter(out, launch.node.name, lock)
            engine.bus.subscribe(watch(writer))
            try:
                run = engine.launch(launch.argv, {**launch.node.env, **launch.env_delta})
            except (AttachError, KeyError) as exc:
                verdict, reason, at_fault = V.FAILED, f"{launch.node.name}: cannot start {launch.argv[0]}: {exc}", [launch.node.name]
                break
            printer = Printer(run, writer, False, options.raw, options.quiet)  # type: ignore[arg-type]
            printers.append(printer)
            printer.start()
            err.write(f"workbench: {launch.node.name}: launched {' '.join(mask_argv(launch.argv))[:120]} (PID {run.pid} there)\n")
            if launch.until_exit:
                while not run.exited.wait(0.1) and not signals.event.is_set():
                    pass
                if run.returncode != 0:
                    verdict, reason, at_fault = V.FAILED, f"{launch.node.name}: preparation step exited with {run.returncode}", [launch.node.name]
                    break
            else:
                runs[launch.node.name] = run
        while verdict is None and not signals.event.is_set():
            lost = [n for n, e in engines.items() if e.node.closed.is_set()]
            if lost:  # the agent stops its runs when the link drops: nothing is left to judge there
                verdict, at_fault = V.EXITED, lost
                reason = "lost the SSH connection to " + ", ".join(lost) + " (the agent there stopped its runs)"
                break
            last = {n: t for n, r in runs.items() if (t := engines[n].node.last_output(r.id)) is not None}
            judged = cluster_verdict(runs, head, last)
            if judged is not None:
                verdict, reason, at_fault = judged
                break
            decided.wait(0.2)
            decided.clear()
        if verdict == V.FAILED:  # ranks fail together: a short grace lets each node's engine judge its own run
            deadline = time.monotonic() + FAILURE_GRACE
            while time.monotonic() < deadline and any(r.verdict is None for r in runs.values()):
                decided.wait(0.1)
                decided.clear()
        dumps: dict[str, int] = {}
        if verdict == V.HUNG:  # the other ranks' stacks tell what the stuck one is waiting for
            def dump(item: tuple[str, Run]) -> tuple[str, int]:
                try:
                    return item[0], len(engines[item[0]].dump_stacks(item[1].id, cause="cluster hang"))
                except AttachError:
                    return item[0], 0
            dumps = dict(_parallel(dump, list(runs.items())))
        interrupted = signals.received
        _parallel(lambda e: _stop_node(e), list(engines.values()))
        for run in runs.values():
            run.reader_done.wait(timeout=5)
        for printer in printers:
            printer.close()
        result = _result(engines, runs, head, verdict, reason or "", at_fault, dumps, interrupted)
        result["session_dir"] = str(session.dir)
        session.write_json("result.json", result)
        _parallel(lambda e: e.shutdown(), list(engines.values()))
        session.close()
    if options.result_sink is not None:
        options.result_sink(result)
    if options.json:
        sys.stdout.write(json.dumps(result, default=str) + "\n")
    else:
        out.write(summary_text(result, False) + _nodes_text(result))
    sys.stdout.flush()
    return int(result["exit_code"])


def _stop_node(engine: NodeEngine) -> None:
    try:
        engine.node.shutdown_session(timeout=60.0)
        engine.node.closed.wait(60.0)
    except AttachError:
        pass


def _result(engines: dict[str, NodeEngine], runs: dict[str, Run], head: str, verdict: str | None, reason: str,
            at_fault: list[str], dumps: dict[str, int], interrupted: int | None) -> dict[str, Any]:
    nodes = {}
    for name, engine in engines.items():
        summary = runs[name].summary() if name in runs else {}
        nodes[name] = {**summary, "host": engine.node.welcome.get("host"), "target": str(engine.node.node.target),
                       "role": engine.node.node.role, "clock_skew": round(engine.node.skew, 4),
                       "node_session_dir": engine.node.welcome.get("session_dir"), "dumps_now": dumps.get(name, 0)}
    if interrupted and verdict is None:
        verdict, reason = V.EXITED, f"interrupted by signal {interrupted}"
    verdict = verdict or V.EXITED
    root = cross_node_root_cause(engines, runs) if verdict != V.HEALTHY else None
    if root is not None and verdict == V.FAILED and root["node"] in runs:
        at_fault = [root["node"], *[n for n in at_fault if n != root["node"]]]  # where it began comes first
    code = V.EXIT_INTERRUPTED if interrupted and verdict == V.EXITED else V.EXIT_CODES.get(verdict, 13)
    head_summary = nodes.get(head, {})
    return {"verdict": verdict, "reason": reason, "root_cause": root, "nodes_at_fault": at_fault,
            "phases": head_summary.get("phases", []), "findings": head_summary.get("findings", []),
            "nodes": nodes, "exit_code": code,
            "clock_skew": {n: v["clock_skew"] for n, v in nodes.items()}}


def _nodes_text(result: dict[str, Any]) -> str:
    lines = []
    root = result.get("root_cause")
    if root:
        lines.append(f"root cause on node {root['node']}" + (" (a consequence only)" if root.get("cascade") else ""))
    for name in result.get("nodes_at_fault", []):
        lines.append(f"{'stuck' if result['verdict'] == V.HUNG else 'at fault'}: node {name}")
    for name, node in result["nodes"].items():
        phases = " → ".join(f"{p['name']} {p['seconds'] or 0:.1f}s" for p in node.get("phases", []))
        lines.append(f"node {name} ({node['target']}, skew {node['clock_skew']:+.3f} s): "
                     f"{node.get('verdict') or 'no verdict'}; {phases or 'no phases'}; dumps {len(node.get('dumps', []))}")
    return "\n".join(lines) + "\n" if lines else ""


__all__ = ["NodeLaunch", "run_headless_nodes", "cluster_verdict", "cross_node_root_cause"]
