"""Recognise what a vLLM log says: phases, findings, and the root cause.

One `Recogniser` is compiled from the knowledge base (signatures, phase markers and a few
generic patterns for Python exceptions and ERROR records) and shared by every run. Each log gets
its own `Diagnosis`, fed batches of display lines with their absolute sequence numbers — the
same code serves a live run and `workbench analyze`.

Root cause (see `rootcause.py`): the earliest error that is not a cascade. A traceback is
folded into one finding titled by its exception line; an exception that matches no signature is
still a finding (`unrecognised_error`) and can be the root cause. Lines wrapped by a deployment
(docker, kubectl, journald, Ray, torch ranks; `prefixes.py`) are read as their bare selves.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

from workbench.core.knowledge import chains
from workbench.core.knowledge.actions import ordered_actions
from workbench.core.knowledge.hangs import WaitStreak, note_wait
from workbench.core.knowledge.phases import PHASE_ORDER, PhaseTracker
from workbench.core.knowledge.prefixes import canonical, split_line
from workbench.core.knowledge.recogniser import Recogniser
from workbench.core.knowledge.recordreading import RecordReading
from workbench.core.knowledge.records import (
    BENIGN_EXCEPTIONS,
    EXCEPTION_AT_START,
    EXCEPTION_TAIL,
    UNRECOGNISED,
    Finding,
    PendingException,
    Update,
    log_timestamp,
    stamp_text,
)
from workbench.core.knowledge.rootcause import choose_root
from workbench.core.knowledge.signatures import Signature


class Diagnosis(RecordReading):
    """Findings, phases and the root cause of one log, built incrementally."""

    def __init__(self, recogniser: Recogniser, start: float = 0.0, at: str | None = None,
                 env: dict[str, str] | None = None, argv: Sequence[str] | None = None) -> None:
        self.recogniser = recogniser
        self.env, self.argv = env, argv  # the run's own, when known: errors name its values
        self.phases = PhaseTracker(start, at)
        self.findings: dict[str, Finding] = {}
        self.marks: dict[int, str] = {}  # seq -> severity ("error", "warning", "info", "benign")
        self._marked: list[int] = []  # the keys of `marks`, sorted
        self.stop_seq: int | None = None  # lines from here on follow our own stop request
        self._pending: list[PendingException] = []
        self._tracebacks: dict[str, int] = {}  # source -> seq of its open "Traceback" line
        self._traceback_starts: list[tuple[int, str]] = []  # (seq, source), recent ones
        self._last_exception: dict[str, int] = {}  # source -> seq of its last exception line
        self._error_hits: list[tuple[int, str, bool]] = []  # (seq, source, cascade) of signature errors
        self._links: dict[str, int] = {}  # source -> chain id of an exception chain going on
        self._chain_of_last: dict[str, int] = {}  # source -> chain id of its last exception
        self._last_frame_seq = -(10**9)  # the last `File "...", line N, in f` of a traceback
        self._named_lines: set[int] = set()  # ERROR records a warning signature names (a client's 404)
        self._log_origin: float | None = None  # first log timestamp, for offline phase times
        self._last_seen_seq = -1
        self._validation: tuple[int, str, PendingException] | None = None  # (seq, model, header)
        self.waits: dict[str, WaitStreak] = {}  # no-progress signature id -> its last streak

    # -- feeding -----------------------------------------------------------------------------

    def feed(self, first_seq: int, lines: Sequence[str], now: float | None = None, text: str | None = None,
             hits: list[tuple[int, int]] | None = None, display: Sequence[str] | None = None) -> Update:
        """Process lines [first_seq, first_seq + len(lines)); `now` is seconds since start
        for a live run, or None to take phase times from the log's own timestamps. `hits`, if
        given, are the matcher's hits in `lines` already found by the caller; `display`, if
        given, are the lines as written when `lines` were unwrapped in bulk (findings show them)."""
        update = Update()
        if not lines:
            return update
        if hits is None:
            hits = self.recogniser.matcher.scan(lines, text)
        targets = self.recogniser.targets
        hits, views = self._unwrap(lines, hits)
        non_progress = self.recogniser.non_progress_ids
        non_progress_lines = 0
        last_counted = -1
        for index, pattern_index in hits:
            kind, target = targets[pattern_index]
            seq = first_seq + index
            if kind == "prefix":
                continue
            line = lines[index] if display is None else display[index]
            view = views.get(index, lines[index])
            if kind == "phase":
                when = now if now is not None else self._offline_time(lines, index)
                previous = self.phases.current
                at = None if now is not None else stamp_text(lines, index)
                if self.phases.advance(target, when, seq, at):
                    update.phases.append((target, previous, seq))
            elif kind == "signature":
                self._signature_hit(target, pattern_index, seq, line, update, view)
                if target.id in non_progress and index != last_counted:
                    non_progress_lines += 1
                    last_counted = index
            else:
                above = views.get(index - 1, lines[index - 1]) if index else None
                self._generic_hit(target, seq, line, update, above)
        self._last_seen_seq = first_seq + len(lines) - 1
        self._resolve_pending(update, final=False)
        update.progress = non_progress_lines < len(lines)
        return update

    def _unwrap(self, lines: Sequence[str], hits: list[tuple[int, int]]
                ) -> tuple[list[tuple[int, int]], dict[int, str]]:
        """Lines that a prefix pattern hit are scanned again as their canonical selves."""
        targets = self.recogniser.targets
        wrapped = sorted({i for i, p in hits if targets[p][0] == "prefix"})
        if not wrapped:
            return hits, {}
        views = {i: canonical(lines[i]) for i in wrapped}
        again = self.recogniser.matcher.scan([views[i] for i in wrapped])
        keep = [h for h in hits if h[0] not in views]
        keep.extend((wrapped[j], p) for j, p in again if targets[p][0] != "prefix")
        keep.sort()
        return keep, views

    def finish(self) -> Update:
        """End of log: settle exceptions still waiting for their continuation lines."""
        update = Update()
        self._resolve_pending(update, final=True)
        return update

    def _in_traceback(self, seq: int) -> bool:
        """The code line under a frame (and the caret line under that), whatever the source."""
        return seq - self._last_frame_seq <= 2

    def mark_stop(self, next_seq: int) -> None:
        """Lines from `next_seq` on follow a stop request (ours, or a signal the server says it
        received): never a root cause."""
        if self.stop_seq is None:
            self.stop_seq = next_seq

    # -- hits --------------------------------------------------------------------------------

    def _signature_hit(self, sig: Signature, pattern_index: int, seq: int, line: str, update: Update,
                       view: str | None = None) -> None:
        source, _level, _ts, message = _parse(line)
        if message[:1] in (" ", "\t") and (source in self._tracebacks or self._in_traceback(seq)):
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
            captures = self.recogniser.matcher.captures(view or line, pattern_index)
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
                actions=ordered_actions([a.fill(captures) for a in sig.actions], phase),  # the fix that fits first
                source=source,
                note="benign here" if benign and not sig.benign else ("benign" if benign else ""),
                after_stop=self.stop_seq is not None and seq >= self.stop_seq,
                platform=sig.platform,
                chain=self._links.get(source, -1),
            )
            self.findings[sig.id] = finding
            update.new_findings.append(finding)
        self._mark(seq, "benign" if benign else sig.severity)
        if sig.severity == "error":
            # a cascade names only its own line: an exception just above it is still a finding
            self._error_hits.append((seq, source, sig.cascade))
        elif _level in ("ERROR", "CRITICAL"):
            self._named_lines.add(seq)
        if not sig.progress:
            note_wait(self.waits, sig.id, seq, line, self.phases.current)
        if sig.cascade and existing is None:
            self._quoted_error(pattern_index, seq, line, view or line, source, update)
        if sig.stops:  # a signal told it to stop: the errors of its shutdown are not a root cause
            self.mark_stop(seq + 1)

    def _generic_hit(self, name: str, seq: int, line: str, update: Update, above: str | None) -> None:
        source, level, _ts, message = _parse(line)
        if name == "frame":
            self._last_frame_seq = seq
            return
        if name == "chain_link":
            self._links[source] = self._chain_of_last.get(source, seq)
            return
        if name == "traceback":
            self._tracebacks[source] = seq
            self._traceback_starts = [*self._traceback_starts[-50:], (seq, source)]
            return
        if name == "exception":
            self._exception_line(seq, line, source, message)
            return
        if name in ("validation", "validation_detail"):
            self._validation_hit(name, seq, line, source, message, above)
            return
        if name == "warning_exception":
            # (a signature that calls this line benign has the last word: libcudart on Ascend)
            found = chains.warning_exception(message) if level == "WARNING" and self.marks.get(seq) != "benign" else None
            if found is not None and found[0] not in BENIGN_EXCEPTIONS:
                self._pending.append(PendingException(
                    seq, source, line, found[0], f"{found[0]}: {found[1]}", self.phases.current, True, None,
                    severity="warning", note="exception logged as a warning",
                ))
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

    def _exception_line(self, seq: int, line: str, source: str, message: str) -> None:
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
        chain = self._links.pop(source, seq)
        self._chain_of_last[source] = chain
        pending = PendingException(seq, source, line, exc_name, message.strip(), self.phases.current, False, start,
                                   chain=chain)
        self._pending.append(pending)
        model = chains.validation_model(message)
        if model is not None:
            self._validation = (seq, model, pending)

    def _resolve_pending(self, update: Update, final: bool) -> None:
        keep: list[PendingException] = []
        for pending in self._pending:
            if not final and self._last_seen_seq < pending.seq + EXCEPTION_TAIL:
                keep.append(pending)
                continue
            low = pending.traceback_start if pending.traceback_start is not None else pending.seq
            high = pending.seq + (0 if pending.record else EXCEPTION_TAIL)
            if any(
                (s == pending.seq if cascade else low <= s <= high) and src == pending.source
                for s, src, cascade in self._error_hits
            ):
                continue  # a signature already names this error
            if pending.record and pending.seq in self._named_lines:
                self._named_lines.discard(pending.seq)
                continue  # an ERROR record a warning signature explains (a client error)
            if pending.record and pending.severity == "error" and any(
                pending.seq < s <= pending.seq + EXCEPTION_TAIL and src == pending.source
                for s, src in self._traceback_starts
            ):
                continue  # the preamble of a traceback: the traceback's exception speaks for it
            self._raise_unrecognised(pending, update)
        self._pending = keep

    def _raise_unrecognised(self, pending: PendingException, update: Update) -> None:
        key = f"{UNRECOGNISED}:{pending.title[:200]}"
        existing = self.findings.get(key)
        self._mark(pending.seq, pending.severity)
        if existing is not None:
            existing.count += 1
            existing.last_seq = pending.seq
            existing.last_line = pending.line
            return
        finding = Finding(
            id=UNRECOGNISED,
            title=pending.title[:300],
            severity=pending.severity,
            first_seq=pending.seq,
            line=pending.line,
            phase=pending.phase,
            why=(
                "An error the knowledge base does not know yet. Read the traceback above it; "
                "if it recurs, add a signature for it."
            ),
            source=pending.source,
            exception=pending.name,
            note=pending.note or ("error record" if pending.record else "exception"),
            after_stop=self.stop_seq is not None and pending.seq >= self.stop_seq,
            chain=pending.chain,
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
        return choose_root(self.findings.values())

    @property
    def last_seq(self) -> int:
        return self._last_seen_seq

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

def _parse(line: str) -> tuple[str, str | None, str | None, str]:
    """(process, level, time, message) of a display line, whatever wraps it."""
    parts = split_line(line)
    return parts.process, parts.level, parts.time, parts.message


def phase_reached_after(diagnosis: Diagnosis, phase: str, seq: int) -> bool:
    """Was `phase` reached at or before line `seq`?"""
    for record in diagnosis.phases.records:
        if record.name == phase:
            return record.seq is None or record.seq <= seq
    return False

def is_later_phase(a: str, b: str) -> bool:
    return PHASE_ORDER[a] > PHASE_ORDER[b]
