"""An engine seen through an attach client: the surface a face uses (`runs`, `bus`, `dumps`,
the command methods), backed by a live session in another process.

Each run is mirrored by a `MirrorRun`: a `Run` with no process of its own that tails the run's
log file (same machine, same user) and recognises it locally, so a face gets the same log store,
phases and findings it would get from a local engine, with its own scroll position and filters.
State only the session knows (verdict, exit, readiness, dumps) comes from the events.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from workbench.core.engine.bus import EventBus
from workbench.core.engine.events import (
    DumpStacks,
    Launch,
    Message,
    Notice,
    PhaseChanged,
    ProcessExited,
    Ready,
    Relaunch,
    RunStarted,
    Smoke,
    SmokeResult,
    StacksDumped,
    Stop,
    Verdict,
    VerdictChanged,
)
from workbench.core.engine.recorded import load_dumps
from workbench.core.engine.run import READ_SIZE, Run, RunSpec
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import KnowledgeBase, load_knowledge_base
from workbench.core.probes.http import SmokeOutcome
from workbench.core.probes.stacks import ProcessDump
from workbench.core.remote.attach_client import AttachClient, AttachError

POLL = 0.05  # seconds between looks at a quiet log file
COMMAND_TIMEOUT = 300.0  # a relaunch waits for the old tree to stop; a dump for py-spy


class MirrorRun(Run):
    """A run of the session, read from its log file."""

    def __init__(self, event: RunStarted, recogniser: Recogniser, settings: Settings) -> None:
        spec = RunSpec(list(event.argv), dict(event.env_delta), event.cwd, event.label, event.cause)
        super().__init__(event.run, spec, Path(event.log_path).parent, recogniser, EventBus(), settings)
        self.pid = event.pid
        self.known_pids.add(event.pid)
        self.started = time.monotonic() - max(0.0, time.time() - event.time)
        self.started_wall = event.time
        self._closing = threading.Event()
        self._session_phase_starts: dict[str, float] = {}
        self._thread = threading.Thread(target=self._follow, name=f"wb-mirror-{self.id}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:  # the session said it started and has not said it exited
        return not self.exited.is_set()

    def _follow(self) -> None:
        fd = os.open(self.store.path, os.O_RDONLY)
        next_sample = 0.0
        try:
            while True:
                if self.alive and time.monotonic() >= next_sample:  # the header's CPU, RSS, procs
                    next_sample = time.monotonic() + self.settings.probe_interval
                    self.sample_tree()
                data = os.read(fd, READ_SIZE)
                if data:
                    self._ingest(*self.store.ingest(data), had_data=True)
                    continue
                if self._closing.is_set() or (self.exited.is_set() and time.monotonic() - (self.ended or 0) > 1.0):
                    break  # the pump has written its last bytes well before the exit reached us
                time.sleep(POLL)
        finally:
            os.close(fd)
        self._ingest(*self.store.finish(), had_data=False)
        with self.lock:
            self.diagnosis.finish()
        self.reader_done.set()

    def _ingest(self, first_seq: int, lines: list[str], text: str, had_data: bool) -> None:
        super()._ingest(first_seq, lines, text, had_data)
        if lines and self._session_phase_starts:
            self._align_phases()

    def session_phase(self, name: str, elapsed: float) -> None:
        """The session's own time for a phase: reading a history in one go must not make
        every phase look instant."""
        with self.lock:
            self._session_phase_starts[name] = elapsed
        self._align_phases()

    def _align_phases(self) -> None:
        with self.lock:
            records = self.diagnosis.phases.records
            for record in records:
                record.start = self._session_phase_starts.get(record.name, record.start)
            for before, after in zip(records, records[1:], strict=False):
                before.seconds = max(0.0, after.start - before.start)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2)
        self.store.close()


class RemoteEngine:
    """What a face needs from an engine, over the socket. Commands block like the local ones.
    Give it an unconnected client and call `connect`."""

    def __init__(self, client: AttachClient, kb: KnowledgeBase | None = None,
                 settings: Settings | None = None) -> None:
        self.client = client
        self.kb = kb if kb is not None else load_knowledge_base()
        self.recogniser = Recogniser(self.kb)
        self.settings = settings or Settings()
        self.bus = EventBus()
        self.runs: dict[str, MirrorRun] = {}
        self.dumps: dict[str, list[list[ProcessDump]]] = {}
        self.closed = False
        self._new_run = threading.Condition()
        client.on_event = self._on_event

    def connect(self, timeout: float = 30.0) -> RemoteEngine:
        """Connect (the client must not be connected yet: the history would pass us by) and wait
        until the session's history is mirrored."""
        self.client.connect()
        self.client.synced.wait(timeout)
        return self

    @property
    def control(self) -> bool:
        return self.client.role == "control"

    # -- events in -------------------------------------------------------------------------------

    def _on_event(self, event: Message) -> None:
        if event.kind == "lines":
            return  # the mirrors tail the files themselves
        run = self.runs.get(getattr(event, "run", ""))
        if isinstance(event, RunStarted):
            with self._new_run:
                self.runs[event.run] = MirrorRun(event, self.recogniser, self.settings)
                self._new_run.notify_all()
        elif run is not None:
            self._update(run, event)
        self.bus.publish(event)

    def _update(self, run: MirrorRun, event: Message) -> None:
        if isinstance(event, (Verdict, VerdictChanged)):
            run.verdict, run.verdict_reason = event.verdict, event.reason
            run.history.append({"verdict": event.verdict, "reason": event.reason, "time": event.time})
        elif isinstance(event, Ready):
            run.ready_url, run.ready_at = event.url, time.monotonic()
        elif isinstance(event, ProcessExited):
            run.returncode, run.exit_signal, run.ended = event.returncode, event.signal, time.monotonic()
            run.exited.set()
        elif isinstance(event, SmokeResult):
            run.smoke_results.append(SmokeOutcome(event.ok, event.status, event.latency, event.endpoint,
                                                  event.output, event.error))
        elif isinstance(event, PhaseChanged):
            run.session_phase(event.phase, event.elapsed)
        elif isinstance(event, StacksDumped):
            run.dump_paths.append(event.path)
            run.stuck = event.stuck or run.stuck
            self.dumps[run.id] = load_dumps(run.dir)

    # -- commands out ----------------------------------------------------------------------------

    def _request(self, command: Message) -> object:
        try:
            return self.client.request(command, COMMAND_TIMEOUT)
        except AttachError as exc:  # shown where the face shows engine notices, then raised
            self.bus.publish(Notice(getattr(command, "run", ""), level="error", text=str(exc)))
            raise

    def _wait_run(self, run_id: str, timeout: float = 30.0) -> MirrorRun:
        with self._new_run:
            self._new_run.wait_for(lambda: run_id in self.runs, timeout)
        return self.get(run_id)

    def get(self, run_id: str) -> MirrorRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def execute(self, command: Message) -> object:
        return self._request(command)

    def launch(self, argv: list[str], env_delta: dict[str, str | None] | None = None, cwd: str | None = None,
               label: str = "", cause: str = "launch", parent: str | None = None) -> Run:
        value = self._request(Launch(list(argv), dict(env_delta or {}), cwd, label))
        return self._wait_run(str((value or {}).get("run")))

    def relaunch(self, run_id: str, env_delta: dict[str, str | None] | None = None,
                 arg_delta: dict[str, str | bool] | None = None, cause: str = "relaunch",
                 keep_old: bool = False) -> Run:
        value = self._request(Relaunch(run_id, dict(env_delta or {}), dict(arg_delta or {}), cause))
        return self._wait_run(str((value or {}).get("run")))

    def stop(self, run_id: str, kill: bool = False, cause: str = "stop") -> tuple[str, list[int]]:
        value = self._request(Stop(run_id, kill=kill))
        used, survivors = value if isinstance(value, list) and len(value) == 2 else ("none", [])
        return str(used), list(survivors)

    def dump_stacks(self, run_id: str, native: bool = False, locals_: bool = False,
                    cause: str = "key") -> list[ProcessDump]:
        self._request(DumpStacks(run_id, native=native, locals=locals_))
        history = self.dumps.get(run_id) or []
        return history[-1] if history else []

    def smoke(self, run_id: str) -> SmokeOutcome:
        value = self._request(Smoke(run_id))
        data = value if isinstance(value, dict) else {}
        return SmokeOutcome(bool(data.get("ok")), data.get("status"), data.get("latency"),
                            str(data.get("endpoint", "")), str(data.get("output", "")), str(data.get("error", "")))

    def record_env_change(self, run_id: str, before: dict[str, str | None], after: dict[str, str | None]) -> None:
        """Tell the others a variable was toggled for the next relaunch (control clients only:
        a read-only client's toggles stay its own)."""
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if not changed or not self.control or self.closed:
            return
        words = [f"{k}={after[k]}" if after.get(k) is not None else f"-{k}" for k in changed]
        try:
            self.client.record_action("env", f"toggle {' '.join(words)} for the next relaunch of {run_id}", run_id)
        except AttachError as exc:
            self.bus.publish(Notice(run_id, level="error", text=str(exc)))

    def send_input(self, run_id: str, data: bytes) -> int:
        raise ValueError("typing into a run works only in a local session, not over attach")

    def profile(self, run_id: str, pid: int, seconds: float = 10.0, native: bool = False):
        raise ValueError("profiling is not offered over attach yet: run `workbench dump --pid` or py-spy here")

    def notice(self, run_id: str, text: str, level: str = "info") -> None:
        self.bus.publish(Notice(run_id, level=level, text=text))

    def shutdown(self) -> None:
        """Detach: the session and its runs go on."""
        if self.closed:
            return
        self.closed = True
        self.client.close()
        for run in list(self.runs.values()):
            run.close()
