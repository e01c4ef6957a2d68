"""The stack analysis of a recorded run: from its last dump file (runs/ID/stacks/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.core.knowledge.stuck import analyze
from workbench.core.probes.stacks import Frame, ProcessDump, ThreadStack


def dump_from_dict(raw: dict) -> ProcessDump:
    """A process as `ProcessDump.to_dict` wrote it."""
    dump = ProcessDump(int(raw.get("pid", 0)), raw.get("name", "?"), raw.get("cmdline", ""),
                       error=raw.get("error", ""), seconds=float(raw.get("seconds", 0.0)))
    dump.threads = [ThreadStack(int(t.get("thread_id", 0)), t.get("name", ""), bool(t.get("active")),
                                bool(t.get("owns_gil")),
                                [Frame(f.get("name", "?"), f.get("filename", "?"), int(f.get("line", 0)))
                                 for f in t.get("frames", [])])
                    for t in raw.get("threads", [])]
    return dump


def last_dump_files(run_dir: Path, count: int = 2) -> list[Path]:
    # names are STAMP-N.json: the dump's number decides the order, not the clock's second
    def number(path: Path) -> int:
        tail = path.stem.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    return sorted((run_dir / "stacks").glob("*.json"), key=number)[-count:]


def stuck_for_run(run_dir: Path) -> dict | None:
    """The analysis saved with the run's last dump, or made again from the dumps (an older session)."""
    files = last_dump_files(Path(run_dir))
    loaded = []
    for path in files:
        try:
            loaded.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    if not loaded:
        return None
    last = loaded[-1]
    if isinstance(last.get("stuck"), dict):
        return last["stuck"]
    dumps = [dump_from_dict(p) for p in last.get("processes", [])]
    previous = [dump_from_dict(p) for p in loaded[-2].get("processes", [])] if len(loaded) > 1 else None
    return analyze(dumps, previous=previous).to_dict()
