"""Recognise what a vLLM log says: phases, findings, and the root cause.

One `Recogniser` is compiled from the knowledge base (signatures, phase markers and a few
generic patterns for Python exceptions and ERROR records) and shared by every run. Each log gets
its own `Diagnosis`, fed batches of display lines with their absolute sequence numbers — the
same code serves a live run and `workbench analyze`.

Root cause: the earliest error that is not a cascade. A traceback is folded into one finding
titled by its exception line; an exception that matches no signature is still a finding
(`unrecognised_error`) and can be the root cause.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any

from workbench.core.knowledge.matcher import Matcher
from workbench.core.knowledge.phases import PHASE_ORDER, PhaseTracker
from workbench.core.knowledge.records import (
    BENIGN_EXCEPTIONS,
    ERROR_RECORD,
    EXCEPTION_AT_START,
    EXCEPTION_LINE,
    EXCEPTION_TAIL,
    GENERIC_PATTERNS,
    TRACEBACK_START,
    UNRECOGNISED,
    Finding,
    PendingException,
    Update,
    log_timestamp,
    parse_record,
    stamp_text,
)
from workbench.core.knowledge.signatures import KnowledgeBase, Signature


class Recogniser:
    """Every pattern of the knowledge base compiled into one matcher."""

    def __init__(self, kb: KnowledgeBase, backend: str | None = None) -> None:
        self.kb = kb
        self.targets: list[tuple[str, Any]] = []
        patterns: list[str] = []
        for sig in kb.signatures:
            for p in sig.patterns:
                patterns.append(p)
                self.targets.append(("signature", sig))
        for marker in kb.phase_markers:
            for p in marker.patterns:
                patterns.append(p)
                self.targets.append(("phase", marker.phase))
        for name, p in zip(GENERIC_PATTERNS, (TRACEBACK_START, EXCEPTION_LINE, ERROR_RECORD), strict=True):
            patterns.append(p)
            self.targets.append(("generic", name))
        self.matcher = Matcher(patterns, backend)
        self.non_progress_ids = {s.id for s in kb.signatures if not s.progress}

    @property
    def backend(self) -> str:
        return self.matcher.backend

class Diagnosis:
    """Findings, phases and the root cause of one log, built incrementally."""

    def __init__(self, recogniser: Recogniser, start: float = 0.0, at: str | None = None) -> None:
        self.recogniser = recogniser
        self.phases = PhaseTracker(start, at)
        self.findings: dict[str, Finding] = {}
        self.marks: dict[int, str] = {}  # seq -> severity ("error", "warning", "info", "benign")
        self._marked: list[int] = []  # the keys of `marks`, sorted
        self.stop_seq: int | None = None  # lines from here on follow our own stop request
        self._pending: list[PendingException] = []
        self._tracebacks: dict[str, int] = {}  # source -> seq of its open "Traceback" line
        self._traceback_starts: list[tuple[int, str]] = []  # (seq, source), recent ones
        self._last_exception: dict[str, int] = {}  # source -> seq of its last exception line
        self._error_hits: list[tuple[int, str]] = []  # (seq, source) of signature errors
        self._named_lines: set[int] = set()  # ERROR records a warning signature names (a client's 404)
        self._log_origin: float | None = None  # first log timestamp, for offline phase times
        self._last_seen_seq = -1

    # -- feeding -----------------------------------------------------------------------------

    def feed(self, first_seq: int, lines: Sequence[str], now: float | None = None, text: str | None = None,
             hits: list[tuple[int, int]] | None = None) -> Update:
        """Process lines [first_seq, first_seq + len(lines)); `now` is seconds since start
        for a live run, or None to take phase times from the log's own timestamps. `hits`, if
        given, are the matcher's hits in `lines` already found by the caller."""
        update = Update()
        if not lines:
            return update
        if hits is None:
            hits = self.recogniser.matcher.scan(lines, text)
        targets = self.recogniser.targets
        non_progress = self.recogniser.non_progress_ids
        non_progress_lines = 0
        last_counted = -1
        for index, pattern_index in hits:
            kind, target = targets[pattern_index]
            seq = first_seq + index
            line = lines[index]
            if kind == "phase":
                when = now if now is not None else self._offline_time(lines, index)
                previous = self.phases.current
                at = None if now is not None else stamp_text(lines, index)
                if self.phases.advance(target, when, seq, at):
                    update.phases.append((target, previous, seq))
            elif kind == "signature":
                self._signature_hit(target, pattern_index, seq, line, update)
                if target.id in non_progress and index != last_counted:
                    non_progress_lines += 1
                    last_counted = index
            else:
                self._generic_hit(target, seq, line)
        self._last_seen_seq = first_seq + len(lines) - 1
        self._resolve_pending(update, final=False)
        update.progress = non_progress_lines < len(lines)
        return update

    def finish(self) -> Update:
        """End of log: settle exceptions still waiting for their continuation lines."""
        update = Update()
        self._resolve_pending(update, final=True)
        return update

    def mark_stop(self, next_seq: int) -> None:
        """Lines from `next_seq` on follow a stop request (ours, or a signal the server says it
        received): never a root cause."""
        if self.stop_seq is None:
            self.stop_seq = next_seq

    # -- hits --------------------------------------------------------------------------------

    def _signature_hit(self, sig: Signature, pattern_index: int, seq: int, line: str, update: Update) -> None:
        source, _level, _ts, message = parse_record(line)
        if source in self._tracebacks and message[:1] in (" ", "\t"):
            # a frame or source line of an open traceback (`raise ValueError("No available
            # memory ...`): the exception line below names the error, not the code
            return
        phase = self.phases.current
        benign = sig.benign or phase in sig.benign_during
        existing = self.findings.get(sig.id)
        if existing is not None:
            if existing.last_seq != seq:
                existing.count += 1
                existing.last_seq = seq
                existing.last_line = line
            existing.benign = existing.benign and benign
        else:
            captures = self.recogniser.matcher.captures(line, pattern_index)
            finding = Finding(
                id=sig.id,
                title=sig.title,
                severity=sig.severity,
                first_seq=seq,
                line=line,
                phase=phase,
                why=sig.why,
                cascade=sig.cascade,
                benign=benign,
                actions=[a.fill(captures) for a in sig.actions],
                source=source,
                note="benign here" if benign and not sig.benign else ("benign" if benign else ""),
                after_stop=self.stop_seq is not None and seq >= self.stop_seq,
                platform=sig.platform,
            )
            self.findings[sig.id] = finding
            update.new_findings.append(finding)
        self._mark(seq, "benign" if benign else sig.severity)
        if sig.severity == "error":
            self._error_hits.append((seq, source))
        elif _level in ("ERROR", "CRITICAL"):
            self._named_lines.add(seq)
        if sig.stops:  # a signal told it to stop: the errors of its shutdown are not a root cause
            self.mark_stop(seq + 1)

    def _generic_hit(self, name: str, seq: int, line: str) -> None:
        source, level, _ts, message = parse_record(line)
        if name == "traceback":
            self._tracebacks[source] = seq
            self._traceback_starts = [*self._traceback_starts[-50:], (seq, source)]
            return
        if name == "exception":
            found = EXCEPTION_AT_START.match(message)
            if found is None:
                return  # e.g. "(Proc pid=1) ValueError:" inside a longer sentence
            exc_name = found.group(1).rsplit(".", 1)[-1]
            start = self._tracebacks.pop(source, None)
            previous = self._last_exception.get(source)
            self._last_exception[source] = seq
            if exc_name in BENIGN_EXCEPTIONS:
                return
            if start is None and previous is not None and seq - previous <= EXCEPTION_TAIL:
                # no new traceback: the message of the exception just above goes on
                # (Dynamo's "BackendCompilerFailed: ... raised:" then the inner error)
                return
            self._pending.append(
                PendingException(seq, source, line, exc_name, message.strip(), self.phases.current, False, start)
            )
            return
        # an ERROR/CRITICAL record: only its own message, not the traceback it carries
        text = message.strip()
        if (
            not text
            or message.startswith((" ", "\t"))
            or text.startswith(("Traceback", "During handling", "The above exception"))
            or EXCEPTION_AT_START.match(text)
            or source in self._tracebacks
            or seq - self._last_exception.get(source, -(10**9)) <= EXCEPTION_TAIL  # its message goes on
        ):
            return
        self._pending.append(
            PendingException(seq, source, line, "", text, self.phases.current, True, None)
        )

    def _resolve_pending(self, update: Update, final: bool) -> None:
        keep: list[PendingException] = []
        for pending in self._pending:
            if not final and self._last_seen_seq < pending.seq + EXCEPTION_TAIL:
                keep.append(pending)
                continue
            low = pending.traceback_start if pending.traceback_start is not None else pending.seq
            high = pending.seq + (0 if pending.record else EXCEPTION_TAIL)
            if any(low <= s <= high and src == pending.source for s, src in self._error_hits):
                continue  # a signature already names this error
            if pending.record and pending.seq in self._named_lines:
                self._named_lines.discard(pending.seq)
                continue  # an ERROR record a warning signature explains (a client error)
            if pending.record and any(
                pending.seq < s <= pending.seq + EXCEPTION_TAIL and src == pending.source
                for s, src in self._traceback_starts
            ):
                continue  # the preamble of a traceback: the traceback's exception speaks for it
            self._raise_unrecognised(pending, update)
        self._pending = keep

    def _raise_unrecognised(self, pending: PendingException, update: Update) -> None:
        key = f"{UNRECOGNISED}:{pending.title[:200]}"
        existing = self.findings.get(key)
        self._mark(pending.seq, "error")
        if existing is not None:
            existing.count += 1
            existing.last_seq = pending.seq
            existing.last_line = pending.line
            return
        finding = Finding(
            id=UNRECOGNISED,
            title=pending.title[:300],
            severity="error",
            first_seq=pending.seq,
            line=pending.line,
            phase=pending.phase,
            why=(
                "An error the knowledge base does not know yet. Read the traceback above it; "
                "if it recurs, add a signature for it."
            ),
            source=pending.source,
            exception=pending.name,
            note="error record" if pending.record else "exception",
            after_stop=self.stop_seq is not None and pending.seq >= self.stop_seq,
        )
        self.findings[key] = finding
        update.new_findings.append(finding)

    def _mark(self, seq: int, severity: str) -> None:
        if seq not in self.marks:
            insort(self._marked, seq)
        self.marks[seq] = severity

    def has_marks_between(self, start: int, stop: int) -> bool:
        """Is any line in [start, stop) marked? (printers skip per-line work when not)"""
        i = bisect_left(self._marked, start)
        return i < len(self._marked) and self._marked[i] < stop

    def marked_seqs(self) -> list[int]:
        return list(self._marked)

    # -- results -----------------------------------------------------------------------------

    def root_cause(self) -> Finding | None:
        """The earliest error that is not a cascade (exceptions and known errors before bare
        ERROR records); failing that, the earliest cascade. On one line, a platform-specific
        signature wins over a generic one."""
        candidates = [
            f
            for f in self.findings.values()
            if f.severity == "error" and not f.benign and not f.after_stop
        ]
        if not candidates:
            return None

        def rank(f: Finding) -> tuple[int, int, int]:
            if f.cascade:
                tier = 2
            elif f.id == UNRECOGNISED and f.note == "error record":
                tier = 1
            else:
                tier = 0
            # two signatures on one line: the platform-specific one is the more precise name
            # (npu_contiguous_interpolate over dynamo_error)
            return tier, f.first_seq, 0 if f.platform != "any" else 1

        return min(candidates, key=rank)

    def errors(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.severity == "error" and not f.benign]

    def findings_list(self) -> list[Finding]:
        return sorted(self.findings.values(), key=lambda f: f.first_seq)

    # -- offline time ------------------------------------------------------------------------

    def _offline_time(self, lines: Sequence[str], index: int) -> float:
        for i in range(index, max(-1, index - 200), -1):
            stamp = log_timestamp(lines[i])
            if stamp is not None:
                if self._log_origin is None:
                    self._log_origin = stamp
                return max(0.0, stamp - self._log_origin)
        return self.phases.records[-1].start

    def note_origin(self, line: str) -> None:
        """Offline: the first timestamped line fixes time zero."""
        if self._log_origin is None:
            self._log_origin = log_timestamp(line)

def phase_reached_after(diagnosis: Diagnosis, phase: str, seq: int) -> bool:
    """Was `phase` reached at or before line `seq`?"""
    for record in diagnosis.phases.records:
        if record.name == phase:
            return record.seq is None or record.seq <= seq
    return False

def is_later_phase(a: str, b: str) -> bool:
    return PHASE_ORDER[a] > PHASE_ORDER[b]
