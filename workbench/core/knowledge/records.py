"""The shape of one log line and of what is found in a log: vLLM's record prefix, timestamps,
the patterns for Python exceptions and ERROR records, and the Finding a recogniser raises."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workbench.core.knowledge.signatures import Action

UNRECOGNISED = "unrecognised_error"

# vLLM's record header, any generation: optional "(Proc pid=N) ", level, "MM-DD HH:MM:SS",
# then "[file.py:N]" (0.8+) or "file.py:N]" (<=0.7).
RECORD_PREFIX = re.compile(
    r"^(?:\((?P<proc>[^()]*?pid=\d+)\)\s+)?"
    r"(?:(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+"
    r"(?P<ts>\d\d-\d\d \d\d:\d\d:\d\d)(?:[.,]\d+)?\s+(?:\[[^\]]*\]|[\w./-]+:\d+\])\s?)?"
    r"(?P<msg>.*)$",
    re.DOTALL,
)

TIMESTAMP = re.compile(r"(?<!\d)(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?!\d)")

TRACEBACK_START = r"Traceback \(most recent call last\):"

# A bare `Exception: ...` counts too (vLLM raises it for a failed WorkerProc); a bare
# `Error:` does not (too common in other tools' output).
EXCEPTION_NAME = (
    r"(?:(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*"
    r"(?:Error|Exception|Exit|Interrupt|Unsupported|Failed|Failure)|Exception)"
)

EXCEPTION_LINE = r"(?:^|\] |\) )" + EXCEPTION_NAME + r"(?::|$)"

ERROR_RECORD = r"(?:^|\) )(?:ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d"

EXCEPTION_AT_START = re.compile(r"^(" + EXCEPTION_NAME + r")(?::\s*(.*))?$", re.DOTALL)

# Exceptions that end a process on purpose (our own stop, Ctrl-C), never a root cause.
BENIGN_EXCEPTIONS = {"KeyboardInterrupt", "SystemExit", "CancelledError", "GeneratorExit"}

# How many lines after an exception line still belong to it (pydantic's "  Value error, ...").
EXCEPTION_TAIL = 6

GENERIC_PATTERNS = ("traceback", "exception", "error_record")

def parse_record(line: str) -> tuple[str, str | None, str | None, str]:
    """(process label, level, timestamp, message) of one display line."""
    found = RECORD_PREFIX.match(line)
    if found is None:  # pragma: no cover - the pattern matches any string
        return "", None, None, line
    return found.group("proc") or "", found.group("level"), found.group("ts"), found.group("msg")

def log_timestamp(line: str, year: int | None = None) -> float | None:
    """Epoch seconds of vLLM's `MM-DD HH:MM:SS` stamp in a line, if any (the year is implied)."""
    found = TIMESTAMP.search(line)
    if not found:
        return None
    month, day, hour, minute, second = (int(g) for g in found.groups())
    try:
        return datetime(year or datetime.now().year, month, day, hour, minute, second).timestamp()
    except ValueError:
        return None

@dataclass
class Finding:
    id: str
    title: str
    severity: str
    first_seq: int
    line: str
    phase: str
    why: str = ""
    cascade: bool = False
    benign: bool = False
    actions: list[Action] = field(default_factory=list)
    last_seq: int = -1
    last_line: str = ""
    count: int = 1
    source: str = ""
    exception: str = ""
    note: str = ""
    after_stop: bool = False
    platform: str = "any"
    chain: int = -1  # exceptions linked by "During handling ..." / "direct cause" share it

    def __post_init__(self) -> None:
        if self.last_seq < 0:
            self.last_seq = self.first_seq
            self.last_line = self.line

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "line": self.line,
            "last_line": self.last_line,
            "phase": self.phase,
            "why": self.why,
            "cascade": self.cascade,
            "benign": self.benign,
            "source": self.source,
            "exception": self.exception,
            "note": self.note,
            "actions": [a.to_dict() for a in self.actions],
        }

    def root_cause_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "line": self.line,
            "seq": self.first_seq,
            "why": self.why,
            "actions": [a.to_dict() for a in self.actions],
        }

@dataclass
class PendingException:
    seq: int
    source: str
    line: str
    name: str
    title: str
    phase: str
    record: bool  # an ERROR record rather than an exception line
    traceback_start: int | None
    severity: str = "error"  # "warning": an exception logged at WARNING
    note: str = ""  # what the finding's note says instead of "exception" / "error record"
    chain: int = -1

@dataclass
class Update:
    """What one batch changed."""

    phases: list[tuple[str, str, int]] = field(default_factory=list)  # (new, previous, seq)
    new_findings: list[Finding] = field(default_factory=list)
    progress: bool = False

def stamp_text(lines: Sequence[str], index: int) -> str | None:
    for i in range(index, max(-1, index - 200), -1):
        found = TIMESTAMP.search(lines[i])
        if found:
            return found.group(0)
    return None
