"""Compare two runs (graph vs eager, before/after an env change): phases, findings, a conclusion."""

from __future__ import annotations

from typing import Any

GRAPH_PHASES = ("compiling", "graph_capture")


def _phase_names(result: dict[str, Any]) -> list[str]:
    return [p["name"] for p in result.get("phases", [])]


def _ids(result: dict[str, Any]) -> set[str]:
    return {f["id"] for f in result.get("findings", []) if f["severity"] != "info"}


def _ok(result: dict[str, Any]) -> bool:
    return result.get("verdict") == "healthy"


def conclusion(a: dict[str, Any], b: dict[str, Any], a_name: str = "A", b_name: str = "B") -> str:
    root_a, root_b = a.get("root_cause"), b.get("root_cause")
    graph_a = any(p in _phase_names(a) for p in GRAPH_PHASES)
    graph_b = any(p in _phase_names(b) for p in GRAPH_PHASES)
    if _ok(a) and _ok(b):
        return "both healthy: the difference does not matter for startup"
    if not _ok(a) and not _ok(b):
        if root_a and root_b and root_a["id"] == root_b["id"]:
            return f"both fail with {root_a['id']}: the change does not touch the cause"
        return (f"both fail, differently ({(root_a or {}).get('id', a.get('verdict'))} vs "
                f"{(root_b or {}).get('id', b.get('verdict'))}): the change moved the failure")
    bad, good, bad_name, good_name = (a, b, a_name, b_name) if not _ok(a) else (b, a, b_name, a_name)
    cause = (bad.get("root_cause") or {}).get("id", bad.get("verdict"))
    bad_graph, good_graph = (graph_a, graph_b) if bad is a else (graph_b, graph_a)
    if bad_graph and not good_graph:
        return f"fails only in graph mode ({bad_name}: {cause}); eager ({good_name}) is healthy → a compile/capture issue"
    return f"{bad_name} fails ({cause}), {good_name} is healthy: the difference between them avoids it"


def compare(a: dict[str, Any], b: dict[str, Any], a_name: str = "A", b_name: str = "B") -> dict[str, Any]:
    ids_a, ids_b = _ids(a), _ids(b)
    return {
        a_name: {"verdict": a.get("verdict"), "last_phase": _phase_names(a)[-1] if a.get("phases") else None,
                 "root_cause": (a.get("root_cause") or {}).get("id")},
        b_name: {"verdict": b.get("verdict"), "last_phase": _phase_names(b)[-1] if b.get("phases") else None,
                 "root_cause": (b.get("root_cause") or {}).get("id")},
        "phases_only_in": {a_name: [p for p in _phase_names(a) if p not in _phase_names(b)],
                           b_name: [p for p in _phase_names(b) if p not in _phase_names(a)]},
        "findings_only_in": {a_name: sorted(ids_a - ids_b), b_name: sorted(ids_b - ids_a)},
        "conclusion": conclusion(a, b, a_name, b_name),
    }
