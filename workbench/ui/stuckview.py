"""Where a run is stuck (core/knowledge/stuck.py), as Rich markup: the hung pane's banner and
the head of the stacks panel."""

from __future__ import annotations

from rich.markup import escape

from workbench.core.knowledge import verdicts as V


def stuck_lines(stuck: dict | None, limit: int = 6) -> list[str]:
    if not stuck or not stuck.get("summary"):
        return []
    return [escape(line) for line in stuck["summary"][:limit]]


def stuck_banner_text(verdict: str | None, stuck: dict | None, limit: int = 3) -> str:
    """The banner above a hung run's log: the odd one out first; empty unless hung (or a dump says stuck)."""
    lines = stuck_lines(stuck, limit)
    if not lines or not (verdict == V.HUNG or (stuck or {}).get("stuck")):
        return ""
    more = len(stuck["summary"]) - len(lines) if stuck else 0
    tail = f"  [i](+{more} more: the stacks panel, o)[/i]" if more > 0 else ""
    return "[b]stuck:[/b] " + "\n        ".join(lines) + tail


def stacks_head(stuck: dict | None) -> list[str]:
    """The first lines of the stacks panel: the summary before the raw stacks."""
    lines = stuck_lines(stuck, limit=12)
    if not lines:
        return []
    return ["[b]Where it is stuck[/b]", *(f"  [yellow]{line}[/]" for line in lines), ""]
