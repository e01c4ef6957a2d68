"""One matcher compiled from the knowledge base, shared by every run's Diagnosis."""

from __future__ import annotations

from typing import Any

from workbench.core.knowledge import chains
from workbench.core.knowledge.matcher import Matcher
from workbench.core.knowledge.prefixes import DETECT_PATTERNS
from workbench.core.knowledge.records import (
    ERROR_RECORD,
    EXCEPTION_LINE,
    GENERIC_PATTERNS,
    TRACEBACK_START,
)
from workbench.core.knowledge.signatures import KnowledgeBase

# Generic patterns beyond records.GENERIC_PATTERNS: how errors are worded inside records.
_CHAIN_PATTERNS = {
    "validation": chains.VALIDATION_HEADER,
    "validation_detail": chains.VALIDATION_DETAIL,
    "warning_exception": chains.WARNING_EXCEPTION,
    "frame": r'File "[^"]+", line \d+, in ',
    "chain_link": r"During handling of the above exception|The above exception was the direct cause",
}


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
        for name, p in _CHAIN_PATTERNS.items():
            patterns.append(p)
            self.targets.append(("generic", name))
        for name, p in DETECT_PATTERNS.items():  # a wrapped line: read it again unwrapped
            patterns.append(p)
            self.targets.append(("prefix", name))
        self.matcher = Matcher(patterns, backend)
        self.non_progress_ids = {s.id for s in kb.signatures if not s.progress}

    @property
    def backend(self) -> str:
        return self.matcher.backend
