"""Startup phases of a vLLM server and a tracker that only moves forward — in the order the
backend prints them: GPU (CUDA, NPU) compile before the KV cache; the CPU backend sizes the KV
cache first and then warms up (compiles) the model."""

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
# every order a real backend prints; the tracker follows those that fit what it has seen so far
BACKEND_ORDERS: dict[str, tuple[str, ...]] = {
    "gpu": PHASES,
    "cpu": ("starting", "loading", "kv_cache", "compiling", "graph_capture", "api_starting", "ready", "serving"),
}
_RANKS = {backend: {name: i for i, name in enumerate(order)} for backend, order in BACKEND_ORDERS.items()}
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
    """Records phase changes; a marker for an earlier phase than the current one (in every
    backend order still possible) is ignored."""

    def __init__(self, start: float = 0.0, at: str | None = None) -> None:
        self.records: list[PhaseRecord] = [PhaseRecord("starting", start, None, at)]
        self.orders: tuple[str, ...] = tuple(BACKEND_ORDERS)  # the backends this log can still be

    @property
    def current(self) -> str:
        return self.records[-1].name

    def reached(self, name: str) -> bool:
        return any(r.name == name for r in self.records)

    def advance(self, name: str, when: float, seq: int | None, at: str | None = None) -> bool:
        """Move to `name` if it is later than the current phase; True when it moved."""
        fitting = tuple(b for b in self.orders if _RANKS[b][name] > _RANKS[b][self.current])
        if not fitting:
            return False
        self.orders = fitting
        last = self.records[-1]
        last.seconds = max(0.0, when - last.start)
        self.records.append(PhaseRecord(name, when, seq, at))
        return True

    def to_list(self, now: float | None = None) -> list[dict]:
        out = [r.to_dict() for r in self.records]
        if now is not None and self.records[-1].seconds is None:
            out[-1]["seconds"] = round(max(0.0, now - self.records[-1].start), 3)
        return out
