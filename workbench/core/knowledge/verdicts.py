"""Verdicts and the exit codes that carry them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.core.knowledge.phases import PHASE_ORDER

if TYPE_CHECKING:
    from workbench.core.knowledge.diagnosis import Diagnosis
    from workbench.core.knowledge.records import Finding

HEALTHY = "healthy"
FAILED = "failed"
FALSE_READY = "false-ready"
HUNG = "hung"
EXITED = "exited"
INCOMPLETE = "incomplete"  # offline only: the log stops before ready with no error

EXIT_CODES = {
    HEALTHY: 0,
    FAILED: 10,
    FALSE_READY: 11,
    HUNG: 12,
    EXITED: 13,
    INCOMPLETE: 14,
}
EXIT_USAGE = 2  # bad command line, bad file, unreadable log
EXIT_PREFLIGHT = 3  # refused to launch: the port is taken (use --force to launch anyway)
EXIT_INTERRUPTED = 130

VERDICT_HELP = {
    HEALTHY: "ready, and the smoke request was answered",
    FAILED: "an error stopped it; the root cause and what to try are printed",
    FALSE_READY: "said it was ready, then the first real request failed",
    HUNG: "no output and no progress for the stall window (stacks dumped); analyze: repeated no-progress waits after the last phase",
    EXITED: "the process ended before ready without a recognised error",
    INCOMPLETE: "(analyze) the log ends before ready, with no error in it",
}


def offline_verdict(diagnosis: Diagnosis) -> str:
    """The verdict a log alone supports."""
    root = diagnosis.root_cause()
    ready = diagnosis.phases.reached("ready") or diagnosis.phases.reached("serving")
    if root is not None:
        ready_record = next(
            (r for r in diagnosis.phases.records if PHASE_ORDER[r.name] >= PHASE_ORDER["ready"]), None
        )
        if (
            ready_record is not None and ready_record.seq is not None and root.first_seq > ready_record.seq
            and not _api_never_listened(diagnosis, root)
        ):
            return FALSE_READY
        return FAILED
    if _stalled(diagnosis):
        return HUNG
    return HEALTHY if ready else INCOMPLETE


def _api_never_listened(diagnosis: Diagnosis, root: Finding) -> bool:
    """uvicorn (vLLM <=0.6.2) binds its port only after "Application startup complete.", so an
    error of the API's own start (a signature whose phase is api_starting, e.g. port_in_use)
    after that line, before any request was served, means the server never listened."""
    sig = diagnosis.recogniser.kb.by_id().get(root.id)
    return sig is not None and sig.phase == "api_starting" and not diagnosis.phases.reached("serving")


def _stalled(diagnosis: Diagnosis) -> bool:
    """The log ends in a wait that means a hang (see hangs.py)."""
    from workbench.core.knowledge.hangs import hang_of

    return hang_of(diagnosis, diagnosis.last_seq) is not None
