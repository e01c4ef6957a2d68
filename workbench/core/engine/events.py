"""Engine commands and events: plain dataclasses that serialise to JSON lines.

The same stream feeds the TUI, the headless printer, the session recorder and (over a Unix
socket) attach clients, so every field is JSON-friendly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass
class Message:
    kind: ClassVar[str] = "message"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


_EVENT_TYPES: dict[str, type[Message]] = {}
_COMMAND_TYPES: dict[str, type[Message]] = {}


def _event(cls: type[Message]) -> type[Message]:
    _EVENT_TYPES[cls.kind] = cls
    return cls


def _command(cls: type[Message]) -> type[Message]:
    _COMMAND_TYPES[cls.kind] = cls
    return cls


def _from_dict(table: dict[str, type[Message]], data: dict[str, Any]) -> Message:
    kind = data.get("kind")
    cls = table.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown message kind {kind!r}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def event_from_dict(data: dict[str, Any]) -> Message:
    return _from_dict(_EVENT_TYPES, data)


def command_from_dict(data: dict[str, Any]) -> Message:
    return _from_dict(_COMMAND_TYPES, data)


# -- events --------------------------------------------------------------------------------


@dataclass
class Event(Message):
    run: str
    time: float = field(default_factory=time.time, kw_only=True)


@_event
@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    argv: list[str]
    env_delta: dict[str, str | None]
    cwd: str
    pid: int
    label: str = ""
    cause: str = ""  # what asked for this launch: "launch", "relaunch: key r", "action: cuda_oom"
    port: int | None = None
    log_path: str = ""


@_event
@dataclass
class LinesAppended(Event):
    kind: ClassVar[str] = "lines"
    first_seq: int
    count: int


@_event
@dataclass
class PhaseChanged(Event):
    kind: ClassVar[str] = "phase"
    phase: str
    previous: str
    seq: int | None
    elapsed: float  # seconds since the run started


@_event
@dataclass
class FindingRaised(Event):
    kind: ClassVar[str] = "finding"
    finding: dict[str, Any]  # Finding.to_dict(); raised once per id, then counted


@_event
@dataclass
class ProcessExited(Event):
    kind: ClassVar[str] = "exited"
    returncode: int | None
    signal: int | None
    elapsed: float


@_event
@dataclass
class StacksDumped(Event):
    kind: ClassVar[str] = "stacks"
    path: str
    processes: int
    errors: list[str]
    summary: str
    stuck: dict = field(default_factory=dict)  # the stack analysis (core/knowledge/stuck.py)


@_event
@dataclass
class ProfileRecorded(Event):
    kind: ClassVar[str] = "profile"
    pid: int
    seconds: float
    samples: int
    svg: str
    speedscope: str
    top: list[str]
    error: str


@_event
@dataclass
class InputSent(Event):
    kind: ClassVar[str] = "input"
    size: int  # bytes typed into the child's pty (the bytes themselves are not recorded)


@_event
@dataclass
class SmokeResult(Event):
    kind: ClassVar[str] = "smoke"
    ok: bool
    status: int | None
    latency: float | None
    endpoint: str
    output: str
    error: str


@_event
@dataclass
class Ready(Event):
    kind: ClassVar[str] = "ready"
    url: str
    elapsed: float


@_event
@dataclass
class Stalled(Event):
    kind: ClassVar[str] = "stalled"
    idle_seconds: float
    cpu_percent: float


@_event
@dataclass
class Verdict(Event):
    kind: ClassVar[str] = "verdict"
    verdict: str
    reason: str
    root_cause: dict[str, Any] | None


@_event
@dataclass
class VerdictChanged(Event):
    """A verdict reached earlier changed while serving (healthy -> failed | hung)."""

    kind: ClassVar[str] = "verdict_changed"
    verdict: str
    previous: str
    reason: str
    root_cause: dict[str, Any] | None
    evidence: list[str] = field(default_factory=list)
    elapsed: float = 0.0


@_event
@dataclass
class StopRequested(Event):
    kind: ClassVar[str] = "stop_requested"
    cause: str


@_event
@dataclass
class Stopped(Event):
    kind: ClassVar[str] = "stopped"
    signal_used: str  # which signal ended the tree: SIGINT, SIGTERM, SIGKILL or "none"
    survivors: list[int]


@_event
@dataclass
class Notice(Event):
    kind: ClassVar[str] = "notice"
    level: str  # info | warning | error
    text: str


@_event
@dataclass
class ActionTaken(Event):
    """The shared timeline of a session: who asked the engine to do what, from which terminal."""

    kind: ClassVar[str] = "action"
    action: str  # relaunch, dump, smoke, stop, kill, launch, shutdown
    detail: str
    user: str
    tty: str
    client: int = 0  # the client's PID


@_event
@dataclass
class ClientPresence(Event):
    """Someone attached to or left a live session (run is "" : it concerns the session)."""

    kind: ClassVar[str] = "client"
    user: str
    tty: str
    role: str
    joined: bool
    client: int = 0


# -- commands ------------------------------------------------------------------------------


@_command
@dataclass
class Launch(Message):
    kind: ClassVar[str] = "launch"
    argv: list[str]
    env_delta: dict[str, str | None] = field(default_factory=dict)
    cwd: str | None = None
    label: str = ""


@_command
@dataclass
class Stop(Message):
    kind: ClassVar[str] = "stop"
    run: str
    kill: bool = False


@_command
@dataclass
class Relaunch(Message):
    kind: ClassVar[str] = "relaunch"
    run: str
    env_delta: dict[str, str | None] = field(default_factory=dict)
    arg_delta: dict[str, str | bool] = field(default_factory=dict)
    cause: str = "relaunch"
    new_pane: bool = False


@_command
@dataclass
class DumpStacks(Message):
    kind: ClassVar[str] = "dump_stacks"
    run: str
    native: bool = False
    locals: bool = False


@_command
@dataclass
class Smoke(Message):
    kind: ClassVar[str] = "smoke"
    run: str
