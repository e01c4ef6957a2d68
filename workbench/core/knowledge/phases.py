"""Startup phases of a vLLM server and a tracker that only moves forward."""

from __future__ import annotations

from dataclasses import dataclass

PHASES: tuple[str, ...] = (
    "starting",
    "loading",
    "compiling",
    "kv_cache",
    "graph_capture",
    "api_starting",
    "ready",
    "serving",
)
PHASE_ORDER = {name: i for i, name in enumerate(PHASES)}
PHASE_TITLES = {
    "starting": "starting",
    "loading": "loading weights",
    "compiling": "compiling",
    "kv_cache": "KV cache",
    "graph_capture": "graph capture",
    "api_starting": "API starting",
    "ready": "ready",
    "serving": "serving",
}


@dataclass
class PhaseRecord:
    name: str
    start: float  # seconds since the run (or the log) started
    seq: int | None  # the log line that marked it; None for "starting"
    at: str | None = None  # wall-clock time or the log's own timestamp
    seconds: float | None = None  # filled when the next phase begins

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "start": round(self.start, 3),
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "seq": self.seq,
            "at": self.at,
        }


class PhaseTracker:
    """Records phase changes; a marker for an earlier phase than the current one is ignored."""

    def __init__(self, start: float = 0.0, at: str | None = None) -> None:
        self.records: list[PhaseRecord] = [PhaseRecord("starting", start, None, at)]

    @property
    def current(self) -> str:
        return self.records[-1].name

    def reached(self, name: str) -> bool:
        return any(r.name == name for r in self.records)

    def advance(self, name: str, when: float, seq: int | None, at: str | None = None) -> bool:
        """Move to `name` if it is later than the current phase; True when it moved."""
        if PHASE_ORDER[name] <= PHASE_ORDER[self.current]:
            return False
        last = self.records[-1]
        last.seconds = max(0.0, when - last.start)
        self.records.append(PhaseRecord(name, when, seq, at))
        return True

    def to_list(self, now: float | None = None) -> list[dict]:
        out = [r.to_dict() for r in self.records]
        if now is not None and self.records[-1].seconds is None:
            out[-1]["seconds"] = round(max(0.0, now - self.records[-1].start), 3)
        return out
