"""The parts of reading a log that follow how errors are worded inside records: pydantic's
header and detail, and a cascade that quotes the real error (see chains.py for the shapes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.core.knowledge import chains
from workbench.core.knowledge.prefixes import split_line
from workbench.core.knowledge.records import EXCEPTION_AT_START, PendingException, Update

if TYPE_CHECKING:
    from workbench.core.knowledge.diagnosis import Diagnosis


class RecordReading:
    """Mixed into Diagnosis; uses its state."""

    def _validation_hit(self: Diagnosis, name: str, seq: int, line: str, source: str, message: str, above: str | None) -> None:
        """pydantic: the header says which model, the detail below it says what is wrong; the
        detail becomes the root line and its title."""
        if name == "validation":
            if self._validation is None or self._validation[0] != seq:  # not an exception line
                model = chains.validation_model(message) or ""
                pending = PendingException(seq, source, line, "ValidationError", message.strip(),
                                           self.phases.current, False, self._tracebacks.pop(source, None))
                self._pending.append(pending)
                self._validation = (seq, model, pending)
            return
        if self._validation is None or seq - self._validation[0] > chains.DETAIL_REACH:
            return
        header_seq, model, pending = self._validation
        above_message = split_line(above).message if above is not None and seq - 1 > header_seq else None
        detail = chains.validation_detail(model, message, above_message)
        if detail is None:
            return
        self._validation = None
        notes = chains.name_run_values(chains.candidate_values(detail.text, detail.value), self.env, self.argv)
        pending.seq, pending.line = seq, line
        pending.title = detail.title + "".join(f"; {n}" for n in notes)
        pending.note = "validation error"

    def _quoted_error(self: Diagnosis, pattern_index: int, seq: int, line: str, view: str, source: str,
                      update: Update) -> None:
        """A cascade that quotes the real error ("Worker failed with error '...'"): the quoted
        text is a finding of its own, named by a signature when one knows it."""
        quoted = self.recogniser.matcher.captures(view, pattern_index).get("error", "").strip()
        if not quoted or any(quoted in f.title or f.title in quoted for f in self.errors() if not f.cascade):
            return
        for _index, p in self.recogniser.matcher.scan([quoted]):
            kind, target = self.recogniser.targets[p]
            if kind == "signature" and not target.cascade and target.severity == "error":
                self._signature_hit(target, p, seq, line, update, view)
                return
        name = EXCEPTION_AT_START.match(quoted)
        self._raise_unrecognised(PendingException(
            seq, source, line, name.group(1) if name else "", quoted, self.phases.current, False, None,
            note="quoted by a cascade",
        ), update)
