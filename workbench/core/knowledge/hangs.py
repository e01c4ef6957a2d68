"""Hangs a log shows by itself: a wait repeated with nothing else printed between, to the end.

"Waiting for 1 local, 0 remote core engine proc(s) to start." every 10 s for minutes, or the
shared-memory broadcast wait every 60 s, is a process that stopped answering. A wait that is
followed by other output was a long step, not a hang. How long it waited comes from the log's
own timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.core.knowledge.records import log_timestamp

if TYPE_CHECKING:
    from workbench.core.knowledge.diagnosis import Diagnosis

# lines between two waits (a blank line, a repeated warning) that still leave them one streak
MAX_GAP = 3
# a streak shorter than this (by its timestamps) is a slow step, not yet a hang
MIN_SECONDS = 60.0


@dataclass
class WaitStreak:
    first_seq: int
    last_seq: int
    phase: str  # the phase it began in
    count: int = 1
    first_time: float | None = None
    last_time: float | None = None

    @property
    def seconds(self) -> float | None:
        if self.first_time is None or self.last_time is None:
            return None
        return max(0.0, self.last_time - self.first_time)


@dataclass
class Hang:
    signature: str
    phase: str
    first_seq: int
    last_seq: int
    count: int
    seconds: float | None

    def to_dict(self) -> dict:
        return {
            "signature": self.signature, "phase": self.phase, "first_seq": self.first_seq,
            "last_seq": self.last_seq, "count": self.count,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
        }

    def sentence(self) -> str:
        waited = f" for {self.seconds:.0f} s" if self.seconds is not None else ""
        return f"waited{waited} ({self.count} times) in {self.phase} with no other output, to the end of the log"


def note_wait(waits: dict[str, WaitStreak], sig_id: str, seq: int, line: str, phase: str) -> None:
    stamp = log_timestamp(line)
    streak = waits.get(sig_id)
    if streak is None or seq - streak.last_seq > MAX_GAP + 1:
        waits[sig_id] = WaitStreak(seq, seq, phase, 1, stamp, stamp)
        return
    if streak.last_seq == seq:
        return
    streak.last_seq, streak.count = seq, streak.count + 1
    if stamp is not None:
        streak.first_time = streak.first_time if streak.first_time is not None else stamp
        streak.last_time = stamp


def hang_of(diagnosis: Diagnosis, last_seq: int) -> Hang | None:
    """The wait streak that ends the log (`last_seq` is its last line), if it is a hang."""
    by_id = diagnosis.recogniser.kb.by_id()
    last_phase_seq = max((r.seq or 0 for r in diagnosis.phases.records), default=0)
    for sig_id, streak in diagnosis.waits.items():
        sig = by_id.get(sig_id)
        if sig is None or sig.progress or sig.severity not in ("warning", "info") or streak.phase in sig.benign_during:
            continue
        if streak.count < 2 or streak.last_seq < last_phase_seq or last_seq - streak.last_seq > MAX_GAP:
            continue
        seconds = streak.seconds
        if seconds is not None and seconds < MIN_SECONDS:
            continue
        return Hang(sig_id, streak.phase, streak.first_seq, streak.last_seq, streak.count, seconds)
    return None
