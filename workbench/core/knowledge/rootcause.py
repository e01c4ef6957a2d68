"""How the root cause is chosen among a log's findings.

1. An exception or a known error that is not a cascade, the earliest first (on one line a
   platform-specific signature beats a generic one). Within one exception chain ("During
   handling of the above exception", "direct cause") a link a signature knows beats an
   exception no signature knows.
2. Else a bare ERROR record that no signature knows.
3. Else an exception that was logged at WARNING (`Failed to import from vllm._C with
   ImportError(...)`): the process went on and died of it later.
4. Else a cascade ("Engine core initialization failed", EngineDeadError, "a worker died"):
   only now, and then it says that the cause is not in this log.

Nothing after our own stop request (or a signal the server says it received) is a candidate.
"""

from __future__ import annotations

from collections.abc import Iterable

from workbench.core.knowledge.records import UNRECOGNISED, Finding

WARNED_EXCEPTION = "exception logged as a warning"
CAUSE_NOT_IN_LOG = "the cause is not in this log"
_NOT_IN_LOG_WHY = (
    "Only a consequence is in this log: the error that caused it was printed elsewhere (another "
    "process's output, a part of the log that was not captured) or not at all. "
)


def _tier(f: Finding) -> int:
    if f.cascade:
        return 3
    if f.severity == "warning":
        return 2
    if f.id == UNRECOGNISED and f.note == "error record":
        return 1
    return 0


def choose_root(findings: Iterable[Finding]) -> Finding | None:
    candidates = [
        f for f in findings
        if not f.benign and not f.after_stop
        and (f.severity == "error" or (f.severity == "warning" and f.note == WARNED_EXCEPTION))
    ]
    if not any(f.severity == "error" for f in candidates):
        return None  # an exception logged as a warning alone does not fail a run
    root = min(candidates, key=lambda f: (_tier(f), f.first_seq, 0 if f.platform != "any" else 1))
    if root.id == UNRECOGNISED and root.chain >= 0:
        # one exception chain: a later link a signature knows explains the unknown first one
        # (KeyError: 'acme_moe_vl' -> "Transformers does not recognize this architecture")
        named = [f for f in candidates if f.chain == root.chain and f.id != UNRECOGNISED and not f.cascade]
        root = min(named, key=lambda f: f.first_seq) if named else root
    for f in candidates:  # live, a cascade can be the root for a while: say so only while it is
        if f.note == CAUSE_NOT_IN_LOG and f is not root:
            f.note, f.why = "", f.why.removeprefix(_NOT_IN_LOG_WHY)
    if root.cascade and root.note != CAUSE_NOT_IN_LOG:
        root.note = CAUSE_NOT_IN_LOG
        root.why = _NOT_IN_LOG_WHY + root.why
    return root
