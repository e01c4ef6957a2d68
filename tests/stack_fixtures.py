"""Recorded trees of py-spy dumps (tests/fixtures/stacks/*.json), read back as the engine sees them."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.core.probes.procfacts import ProcFacts
from workbench.core.probes.stacks import ProcessDump, _explain, parse_threads

STACKS = Path(__file__).resolve().parent / "fixtures" / "stacks"


def load_tree(name: str) -> tuple[list[ProcessDump], dict[int, ProcFacts]]:
    """A fixture: per process its name, argv, sampled state and CPU, and py-spy's JSON (or its stderr)."""
    data = json.loads((STACKS / name).read_text())
    dumps, facts = [], {}
    for proc in data["processes"]:
        dump = ProcessDump(proc["pid"], proc["name"], proc["cmdline"])
        if "stderr" in proc:
            dump.error = _explain(proc["stderr"])
        else:
            dump.threads = parse_threads(proc["pyspy"])
        dumps.append(dump)
        facts[proc["pid"]] = ProcFacts(proc.get("state", ""), proc.get("cpu_percent"))
    return dumps, facts
