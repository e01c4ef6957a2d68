"""One launched command: its pty process, the reader thread, the log store and diagnosis."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptyprocess import PtyProcess

from workbench.core.cmdline import server_address
from workbench.core.engine.bus import EventBus
from workbench.core.engine.events import FindingRaised, LinesAppended, PhaseChanged
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.diagnosis import Diagnosis, Recogniser
from workbench.core.knowledge.records import Finding
from workbench.core.knowledge.requests import annotate_client_errors
from workbench.core.logs.logstore import LogStore
from workbench.core.logs.plog import PlogTailer, plog_dirs
from workbench.core.probes.http import SmokeOutcome
from workbench.core.process.procs import ProcInfo, describe, pump_env, tree
from workbench.core.process.pump import start_pump
from workbench.core.process.sched import lower_thread_priority

READ_SIZE = 1024 * 1024  # the tailer reads big: the pump already absorbed the pty's small writes
IDLE_POLL = 0.02  # seconds between looks at a quiet log (bounds finding latency)


@dataclass
class RunSpec:
    argv: list[str]
    env_delta: dict[str, str | None] = field(default_factory=dict)  # vs the inherited env
    cwd: str | None = None
    label: str = ""
    cause: str = "launch"
    parent: str | None = None  # the run this one relaunches


class Run:
    def __init__(self, run_id: str, spec: RunSpec, directory: Path, recogniser: Recogniser,
                 bus: EventBus, settings: Settings) -> None:
        self.id = run_id
        self.spec = spec
        self.dir = directory
        self.bus = bus
        self.settings = settings
        self.store = LogStore(directory / "output.log", tail_lines=settings.tail_lines)
        # the run's own env and argv: an error that quotes one of their values names it
        env = {k: v for k, v in {**os.environ, **spec.env_delta}.items() if v is not None}
        self.diagnosis = Diagnosis(recogniser, start=0.0, at=time.strftime("%H:%M:%S"), env=env, argv=spec.argv)
        self.lock = threading.RLock()  # guards diagnosis for readers on other threads
        self.address = server_address(spec.argv)
        self.proc: PtyProcess | None = None
        self.pid: int | None = None
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.last_progress = self.started
        self.returncode: int | None = None
        self.exit_signal: int | None = None
        self.ended: float | None = None
        self.ready_url: str | None = None
        self.model_id: str = ""
        self.ready_at: float | None = None
        self.verdict: str | None = None
        self.verdict_reason: str = ""
        self.history: list[dict] = []  # every verdict with its time: healthy, then failed | hung
        self.own_requests = 0  # requests the workbench itself has in flight (smoke)
        self.smoke_results: list[SmokeOutcome] = []
        self.dump_paths: list[str] = []
        self.stuck: dict | None = None  # where the last dump says the tree is (knowledge/stuck.py)
        self.stopping = False
        self.recorded = False  # loaded from a past session: read-only, nothing to stop or save
        self.stop_signal: str | None = None
        self.tree_snapshot: list[ProcInfo] = []
        self.live_tree: list[ProcInfo] = []  # the last sample before a stop: what the summary shows
        self.known_pids: set[int] = set()
        self.reader_done = threading.Event()
        self.exited = threading.Event()
        self._reader: threading.Thread | None = None
        self.pump: subprocess.Popen | None = None
        # Ascend plog of the tree's PIDs: a second log source, created when the first line comes
        self.plog_store: LogStore | None = None
        self.plog_diagnosis: Diagnosis | None = None
        self._recogniser = recogniser
        self._plog: PlogTailer | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def attach_process(self, proc: PtyProcess, env: dict[str, str]) -> None:
        """Start copying the pty to disk (the pump) and tailing it (the reader thread)."""
        self.proc = proc
        self.pid = proc.pid
        self.known_pids.add(proc.pid)
        self.started = time.monotonic()
        self.last_progress = self.started
        self.pump = start_pump(proc.fd, str(self.store.path), pump_env(env))  # outlives a stop: drains the pty
        # the plog tailer first: the reader stops it when the output ends, which can be at once
        self._plog = PlogTailer(plog_dirs(env), lambda: set(self.known_pids), self._ingest_plog)
        self._plog.start()
        self._reader = threading.Thread(target=self._read_loop, name=f"wb-read-{self.id}", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.proc is not None and not self.exited.is_set()

    def elapsed(self) -> float:
        end = self.ended if self.ended is not None else time.monotonic()
        return end - self.started

    # -- the reader: append, index, recognise; never wait on a face ---------------------------

    def _read_loop(self) -> None:
        """Tail the raw log the pump writes; big reads when the child floods, a short nap
        when it is quiet. Ends when the pump has exited and the file is drained."""
        lower_thread_priority()
        fd = os.open(self.store.path, os.O_RDONLY)
        try:
            while True:
                data = os.read(fd, READ_SIZE)
                if data:
                    self._ingest(*self.store.ingest(data), had_data=True)
                    if len(data) < READ_SIZE:
                        # caught up: nap, so a flood arrives in big batches — per-batch work
                        # (events, locks, wakeups) would otherwise take CPU from the child
                        time.sleep(IDLE_POLL)
                    continue
                if self.pump is not None and self.pump.poll() is not None:
                    data = os.read(fd, READ_SIZE)  # the last bytes written before it exited
                    if data:
                        self._ingest(*self.store.ingest(data), had_data=True)
                        continue
                    break
                time.sleep(IDLE_POLL)
        finally:
            os.close(fd)
        if self._plog is not None:
            self._plog.stop()  # one last look: plog lines written just before the exit count
        self._ingest(*self.store.finish(), had_data=False)
        with self.lock:
            self._publish_update(self.diagnosis.finish(), 0, 0)
        self.store.release()
        self.reader_done.set()
        # the pty master is needed until the process is gone (input, resize); then give it back
        self.exited.wait()
        if self.proc is not None and not self.proc.closed:
            try:
                self.proc.fileobj.close()
            except OSError:
                pass
            self.proc.closed = True  # so ptyprocess does not try to close (and kill) it again

    def _ingest(self, first_seq: int, lines: list[str], text: str, had_data: bool) -> None:
        now = time.monotonic()
        with self.lock:
            update = self.diagnosis.feed(first_seq, lines, now - self.started, text)
        if update.progress or (had_data and not lines):  # a redrawn progress bar is progress too
            self.last_progress = now
        if lines:
            self.bus.publish(LinesAppended(self.id, first_seq=first_seq, count=len(lines)))
        self._publish_update(update, first_seq, len(lines))

    def _ingest_plog(self, data: bytes) -> None:
        if self.plog_store is None:
            self.plog_store = LogStore(self.dir / "plog.log", tail_lines=self.settings.tail_lines)
            self.plog_diagnosis = Diagnosis(self._recogniser, start=0.0, at=time.strftime("%H:%M:%S"))
        first, lines = self.plog_store.append(data)
        assert self.plog_diagnosis is not None
        with self.lock:
            update = self.plog_diagnosis.feed(first, lines, self.elapsed())
        for finding in update.new_findings:
            self.bus.publish(FindingRaised(self.id, finding={**finding.to_dict(), "log": "plog"}))

    def _publish_update(self, update, _first: int, _count: int) -> None:
        for name, previous, seq in update.phases:
            self.bus.publish(PhaseChanged(self.id, phase=name, previous=previous, seq=seq, elapsed=self.elapsed()))
        for finding in update.new_findings:
            self.bus.publish(FindingRaised(self.id, finding=finding.to_dict()))

    # -- views for faces -------------------------------------------------------------------------

    def sample_tree(self) -> list[ProcInfo]:
        if self.pid is None or self.exited.is_set():
            self.tree_snapshot = []
            return []
        procs = tree(self.pid)
        self.known_pids.update(p.pid for p in procs)
        self.tree_snapshot = describe(procs, self.pid)
        if not self.stopping:  # a tree shutting down has lost its titles and children
            self.live_tree = self.tree_snapshot
        return self.tree_snapshot

    def root_cause(self) -> Finding | None:
        """From the server's output; from plog only when the output names none."""
        with self.lock:
            root = self.diagnosis.root_cause()
            if root is None and self.plog_diagnosis is not None:
                root = self.plog_diagnosis.root_cause()
            return root

    def findings(self) -> list[Finding]:
        with self.lock:
            found = self.diagnosis.findings_list()
            if self.plog_diagnosis is not None:
                found = found + self.plog_diagnosis.findings_list()
            return found

    def plog_findings(self) -> list[Finding]:
        with self.lock:
            return self.plog_diagnosis.findings_list() if self.plog_diagnosis is not None else []

    def phase(self) -> str:
        return self.diagnosis.phases.current

    def summary(self) -> dict:
        """The result object of `run --headless --json` (and of a run in a session)."""
        with self.lock:
            root = self.root_cause()
            annotate_client_errors(self.findings(), self.model_id or None)
            return {
                "run": self.id,
                "verdict": self.verdict,
                "reason": self.verdict_reason,
                "history": list(self.history),
                "root_cause": root.root_cause_dict() if root else None,
                "phases": self.diagnosis.phases.to_list(now=self.elapsed()),
                "last_phase": self.diagnosis.phases.current,
                "findings": [f.to_dict() for f in self.diagnosis.findings_list()],
                "smoke": self.smoke_results[-1].to_dict() if self.smoke_results else None,
                "returncode": self.returncode,
                "signal": self.exit_signal,
                "stop_signal": self.stop_signal,
                "seconds": round(self.elapsed(), 3),
                "pid": self.pid,
                "ready_url": self.ready_url,
                "lines": len(self.store),
                "log": str(self.store.path),
                "dumps": list(self.dump_paths),
                "stuck": self.stuck,
                "tree": [p.to_dict() for p in self.live_tree],
                "known_pids": sorted(self.known_pids),
                "plog": None if self.plog_store is None else {
                    "lines": len(self.plog_store), "log": str(self.plog_store.path),
                    "files": sorted(str(p) for p in (self._plog.files_seen if self._plog else ())),
                    "findings": [f.to_dict() for f in self.plog_diagnosis.findings_list()] if self.plog_diagnosis else [],
                },
            }
