"""The local side of a node: an attach client over `ssh … python -m workbench.core.remote.agent`,
and an engine surface (`NodeEngine`) whose runs mirror the node's runs from the bytes it streams.

The node's log bytes land in this machine's session dir (runs/<id>/output.log), where a mirror
run reads and recognises them like any local run; dumps the node writes are copied beside them.
The node's clock is compared with ours at connect: its timestamps are moved onto our clock.
"""

from __future__ import annotations

import base64
import bisect
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.engine.events import Message, RunStarted, StacksDumped
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.signatures import KnowledgeBase
from workbench.core.process.procs import ProcInfo
from workbench.core.record.session import Session, make_private_dir
from workbench.core.remote.attach_client import AttachClient, AttachError
from workbench.core.remote.protocol import LineReader, ProtocolError, encode, hello
from workbench.core.remote.remote_engine import MirrorRun, RemoteEngine
from workbench.core.remote.ssh import (
    NOT_INSTALLED,
    PipeSocket,
    SshTarget,
    agent_command,
    not_installed,
    ssh_argv,
)


@dataclass
class NodeSpec:
    name: str
    target: SshTarget
    python: str = "python3"
    ssh_config: str | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    role: str = "head"


class NodeReader(LineReader):
    """Protocol messages, with the node's data messages (`log`, `file`) taken out on the way."""

    def __init__(self, sock: PipeSocket, on_data: Any) -> None:
        super().__init__(sock)  # type: ignore[arg-type]
        self.on_data = on_data

    def read(self) -> dict[str, Any] | None:
        while True:
            message = super().read()
            if message is None or message.get("type") not in ("log", "file"):
                return message
            self.on_data(message)


class NodeClient(AttachClient):
    """A control client of one node's agent, over the user's ssh."""

    def __init__(self, node: NodeSpec, local_dir: Path, settings: Settings | None = None) -> None:
        super().__init__(Path(node.name), control=True)
        self.node = node
        self.local_dir = Path(local_dir)
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.skew = 0.0  # node clock minus ours, measured at connect
        self.round_trip = 0.0
        self.line_times: dict[str, tuple[list[int], list[float]]] = {}  # run → (lines so far, our time)
        self._stderr: deque[str] = deque(maxlen=20)
        self._files_lock = threading.Lock()

    def connect(self, timeout: float = 60.0) -> NodeClient:
        argv = ssh_argv(self.node.target, agent_command(self.node.python), self.node.ssh_config)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True, close_fds=True)
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self._stderr_reader = threading.Thread(target=self._read_stderr, name=f"wb-ssh-err-{self.node.name}",
                                               daemon=True)
        self._stderr_reader.start()
        sock = PipeSocket(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        reader = NodeReader(sock, self._on_data)
        spec = {**hello(self.role, self.who), "node": self.node.name,
                "settings": self.settings.__dict__ if self.settings else {}}
        try:
            sock.sendall(encode(spec))
        except OSError:
            pass  # it hung up at once: the reason is on its stderr
        try:
            first = reader.read()
        except ProtocolError:
            first = None
        if first is None or first.get("type") != "welcome":
            raise AttachError(self._why_not(first))
        self.welcome = first
        self._sock = sock  # type: ignore[assignment]
        self._reader = threading.Thread(target=self._read_loop, args=(reader,), name=f"wb-node-{self.node.name}",
                                        daemon=True)
        self._reader.start()
        self.measure_clock()
        return self

    def measure_clock(self, tries: int = 3) -> None:
        """Node clock minus ours, from the quickest of a few round trips (NTP's idea, small)."""
        best: tuple[float, float] | None = None
        for _ in range(tries):
            sent = time.time()
            answer = self._send({"type": "clock"}, 30.0)
            got = time.time()
            remote = float((answer.get("value") or {}).get("time", got))
            if best is None or got - sent < best[0]:
                best = (got - sent, remote - (sent + got) / 2)
        if best is not None:
            self.round_trip, self.skew = best

    def _why_not(self, first: dict[str, Any] | None) -> str:
        host = self.node.target.host
        if first is not None and first.get("type") == "error":
            self.close()
            return f"{self.node.name}: {first.get('message', 'refused')}"
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.close()
            return f"{self.node.name} ({host}): the agent did not answer"
        self._stderr_reader.join(timeout=5)  # ssh has exited: its last words are on the way
        stderr = "\n".join(self._stderr)
        if not_installed(stderr):
            return NOT_INSTALLED.format(host=host)
        last = next((line for line in reversed(self._stderr) if line.strip()), f"ssh exited with {code}")
        if code == 255:
            return f"cannot reach {self.node.target} over ssh: {last}"
        return f"{self.node.name} ({host}): the agent exited with {code}: {last}"

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr)

    # -- data from the node ------------------------------------------------------------------------

    def _on_data(self, message: dict[str, Any]) -> None:
        data = base64.b64decode(message.get("data", ""))
        if message["type"] == "log":
            run = str(message.get("run", ""))
            if not run.isalnum():
                return
            path = make_private_dir(self.local_dir / "runs" / run) / "output.log"
            with open(path, "ab") as handle:
                handle.write(data)
            counts, times = self.line_times.setdefault(run, ([], []))
            counts.append((counts[-1] if counts else 0) + data.count(b"\n"))
            times.append(float(message.get("t", time.time())) - self.skew)
            return
        rel = Path(str(message.get("path", "")))
        if rel.is_absolute() or ".." in rel.parts:
            return  # a node writes into its own session dir only
        with self._files_lock:
            target = self.local_dir / rel
            make_private_dir(target.parent)
            target.write_bytes(data)

    def line_time(self, run: str, seq: int) -> float | None:
        """When (on our clock) the node wrote line `seq` of `run` (`r1`, or `node/r1` in a cluster)."""
        counts, times = self.line_times.get(run.rsplit("/", 1)[-1], ([], []))
        index = bisect.bisect_right(counts, seq)
        return times[index] if index < len(times) else (times[-1] if times else None)

    def last_output(self, run: str) -> float | None:
        """When (on our clock) the node last wrote to `run`'s log."""
        times = self.line_times.get(run.rsplit("/", 1)[-1], ([], []))[1]
        return times[-1] if times else None

    def preflight(self, argv: list[str], env_delta: dict[str, str | None], cwd: str | None,
                  timeout: float = 60.0) -> dict[str, Any]:
        answer = self._send({"type": "preflight", "argv": argv, "env_delta": env_delta, "cwd": cwd}, timeout)
        if not answer.get("ok"):
            raise AttachError(str(answer.get("error", "preflight failed")))
        return dict(answer.get("value") or {})

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # ssh: the agent on the node reads EOF and stops its runs
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                stream.close()
            except OSError:
                pass


class NodeRun(MirrorRun):
    """A mirror whose process tree is on another machine: nothing to sample here."""

    def sample_tree(self) -> list[ProcInfo]:
        return []


class NodeEngine(RemoteEngine):
    """One node's engine, seen from here; the session (events, logs, dumps) is kept locally."""

    def __init__(self, client: NodeClient, session: Session, kb: KnowledgeBase | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__(client, kb, settings)
        self.node: NodeClient = client
        self.session = session
        self.bus.subscribe(session.record)

    @property
    def name(self) -> str:
        return self.node.node.name

    def _on_event(self, event: Message) -> None:
        if event.kind == "lines":
            return
        if hasattr(event, "time"):
            event = replace(event, time=event.time - self.node.skew)  # type: ignore[arg-type]
        if isinstance(event, RunStarted):
            local = self.session.run_dir(event.run) / "output.log"
            event = replace(event, log_path=str(local))
            with self._new_run:
                self.runs[event.run] = NodeRun(event, self.recogniser, self.settings)
                self._new_run.notify_all()
            self.bus.publish(event)
            return
        if isinstance(event, StacksDumped):
            root = Path(str(self.node.welcome.get("session_dir", "")))
            try:
                event = replace(event, path=str(self.session.dir / Path(event.path).relative_to(root)))
            except ValueError:
                pass
        super()._on_event(event)

    def shutdown(self) -> None:
        """Stop the node's runs and its agent, then close the local session."""
        if self.closed:
            return
        self.closed = True
        try:
            if not self.node.closed.is_set():
                self.node.shutdown_session(timeout=60.0)
                self.node.closed.wait(60.0)  # the agent hangs up once its runs are stopped
        except AttachError:
            pass
        self.node.close()
        for run in list(self.runs.values()):
            run.close()
        self.session.close()


def connect_node(node: NodeSpec, session: Session, kb: KnowledgeBase | None = None,
                 settings: Settings | None = None, timeout: float = 60.0) -> NodeEngine:
    client = NodeClient(node, session.dir, settings)
    engine = NodeEngine(client, session, kb, settings)
    client.on_event = engine._on_event
    client.connect(timeout)
    client.synced.wait(timeout)
    return engine
