"""Several nodes' engines as one engine surface, for the TUI's pane per node.

A run is named `NODE/RUN` (`head/r1`, `worker/r1`); events are relayed with that name and
commands go to the node the name says.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from workbench.core.engine.bus import EventBus
from workbench.core.engine.events import Message, Notice, RunStarted, Verdict
from workbench.core.engine.run import Run
from workbench.core.knowledge import verdicts as V
from workbench.core.probes.http import SmokeOutcome
from workbench.core.probes.stacks import ProcessDump
from workbench.core.remote.node_engine import NodeEngine

SEP = "/"


def cross_node_root_cause(engines: dict[str, NodeEngine], runs: dict[str, Run]) -> dict[str, Any] | None:
    """The earliest error that is not a cascade, across every node by the time the node wrote it
    (moved onto our clock); failing that, the earliest cascade."""
    candidates = []
    for name, run in runs.items():
        with run.lock:
            findings = [f for f in run.diagnosis.findings.values()
                        if f.severity == "error" and not f.benign and not f.after_stop]
        for finding in findings:
            at = engines[name].node.line_time(run.id, finding.first_seq)
            candidates.append((1 if finding.cascade else 0, at if at is not None else float("inf"), name, finding))
    if not candidates:
        return None
    _tier, at, name, finding = min(candidates, key=lambda c: (c[0], c[1]))
    return {**finding.root_cause_dict(), "node": name, "at": at, "cascade": finding.cascade}


class ClusterEngine:
    def __init__(self, engines: dict[str, NodeEngine]) -> None:
        self.engines = engines
        first = next(iter(engines.values()))
        self.settings = first.settings
        self.client = first.client  # the head's timeline is the one shown
        self.bus = EventBus()
        self.runs: dict[str, Run] = {}
        self.closed = False
        for name, engine in engines.items():
            engine.bus.subscribe(partial(self._relay, name))

    control = True

    def _relay(self, node: str, event: Message) -> None:
        run_id = getattr(event, "run", "")
        if run_id:
            event = replace(event, run=f"{node}{SEP}{run_id}")  # type: ignore[arg-type]
        if isinstance(event, RunStarted):
            run = self.engines[node].runs[run_id]
            run.id = event.run  # the node's engine keeps its own key; the faces see the long name
            self.runs[run.id] = run
        self.bus.publish(event)
        if isinstance(event, Verdict) and event.verdict != V.HEALTHY:
            self._note_root_cause()

    def _note_root_cause(self) -> None:
        """One root cause across the nodes, where every face shows notices."""
        runs = {name: e.runs[r] for name, e in self.engines.items() for r in list(e.runs)[-1:]}
        root = cross_node_root_cause(self.engines, runs)
        if root is not None:
            self.bus.publish(Notice("", level="error", text=f"across nodes: root cause on {root['node']}: "
                                                            f"{root['title']}: {root['line'][:160]}"))

    def _split(self, run_id: str) -> tuple[NodeEngine, str]:
        node, _, local = run_id.partition(SEP)
        if node not in self.engines or not local:
            raise KeyError(f"no run {run_id!r}")
        return self.engines[node], local

    @property
    def dumps(self) -> dict[str, list[list[ProcessDump]]]:
        # a node engine keys its dumps by the run's id, which is the long name here already
        return {k: v for e in self.engines.values() for k, v in e.dumps.items()}

    def get(self, run_id: str) -> Run:
        try:
            return self.runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def launch_on(self, node: str, argv: list[str], env_delta: dict[str, str | None] | None = None) -> Run:
        return self.engines[node].launch(argv, env_delta)

    def launch(self, argv: list[str], env_delta: dict[str, str | None] | None = None, cwd: str | None = None,
               label: str = "", cause: str = "launch", parent: str | None = None) -> Run:
        return next(iter(self.engines.values())).launch(argv, env_delta, cwd, label, cause, parent)

    def execute(self, command: Message) -> object:
        engine, local = self._split(getattr(command, "run", ""))
        return engine.execute(replace(command, run=local))  # type: ignore[arg-type]

    def relaunch(self, run_id: str, env_delta: dict[str, str | None] | None = None,
                 arg_delta: dict[str, str | bool] | None = None, cause: str = "relaunch",
                 keep_old: bool = False) -> Run:
        engine, local = self._split(run_id)
        return engine.relaunch(local, env_delta, arg_delta, cause, keep_old)

    def stop(self, run_id: str, kill: bool = False, cause: str = "stop") -> tuple[str, list[int]]:
        engine, local = self._split(run_id)
        return engine.stop(local, kill, cause)

    def dump_stacks(self, run_id: str, native: bool = False, locals_: bool = False,
                    cause: str = "key") -> list[ProcessDump]:
        """A dump on one node dumps every node in parallel: a hang is read across ranks."""
        engine, local = self._split(run_id)
        others = [(e, r) for name, e in self.engines.items() for r in e.runs if e is not engine and e.runs[r].alive]
        with ThreadPoolExecutor(max_workers=len(others) + 1) as pool:
            mine = pool.submit(engine.dump_stacks, local, native, locals_, cause)
            for other, run in others:
                pool.submit(other.dump_stacks, run, native, locals_, f"{cause} (on {run_id})")
            return mine.result()

    def smoke(self, run_id: str) -> SmokeOutcome:
        engine, local = self._split(run_id)
        return engine.smoke(local)

    def record_env_change(self, run_id: str, before: dict[str, str | None], after: dict[str, str | None]) -> None:
        engine, local = self._split(run_id)
        engine.record_env_change(local, before, after)

    def send_input(self, run_id: str, data: bytes) -> int:
        raise ValueError("typing into a run works only in a local session, not on a node")

    def profile(self, run_id: str, pid: int, seconds: float = 10.0, native: bool = False):
        raise ValueError("profiling is not offered on a node yet: run py-spy there")

    def notice(self, run_id: str, text: str, level: str = "info") -> None:
        self.bus.publish(Notice(run_id, level=level, text=text))

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        with ThreadPoolExecutor(max_workers=len(self.engines)) as pool:
            list(pool.map(lambda e: e.shutdown(), self.engines.values()))
