"""Past sessions: list them, and load their runs back as read-only Runs (logs, findings, dumps)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.engine.bus import EventBus
from workbench.core.engine.run import Run, RunSpec
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.probes.stacks import Frame, ProcessDump, ThreadStack
from workbench.core.record.session import read_events, sessions_root

CHUNK = 4 * 1024 * 1024


@dataclass
class SessionInfo:
    path: Path
    started: float
    runs: list[tuple[str, str | None]]  # (run id, verdict)
    command: str


def _run_number(run_id: str) -> int:
    found = re.fullmatch(r"r(\d+)", run_id)
    return int(found.group(1)) if found else 0


def _summaries(directory: Path) -> dict[str, dict]:
    out = {}
    for path in sorted((directory / "runs").glob("*/summary.json"), key=lambda p: _run_number(p.parent.name)):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


def list_sessions(root: Path | None = None) -> list[SessionInfo]:
    """Newest first."""
    root = root or sessions_root()
    found = []
    for directory in root.iterdir() if root.is_dir() else []:
        events = directory / "events.jsonl"
        if not events.exists():
            continue
        summaries = _summaries(directory)
        events_read = read_events(directory)
        started = [e for e in events_read if e.get("kind") == "run_started"]
        # a live session has no summaries yet: its verdict events say as much
        verdicts = {e.get("run"): e.get("verdict") for e in events_read if e.get("kind") == "verdict"}
        verdicts.update({rid: s.get("verdict") for rid, s in summaries.items()})
        runs = [(e["run"], verdicts.get(e["run"])) for e in started]
        command = " ".join(started[0].get("argv", [])) if started else ""
        found.append(SessionInfo(directory, events.stat().st_mtime, runs, command))
    return sorted(found, key=lambda s: -s.started)


def resolve_session(name: str, root: Path | None = None) -> Path:
    """A session by path, by directory name, or by a unique prefix of its name."""
    path = Path(name)
    if (path / "events.jsonl").exists():
        return path
    root = root or sessions_root()
    matches = [s.path for s in list_sessions(root) if s.path.name == name or s.path.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no session {name!r} (workbench sessions lists them)")
    raise FileNotFoundError(f"{name!r} matches {len(matches)} sessions: be more specific")


def _dump_from_dict(d: dict) -> ProcessDump:
    dump = ProcessDump(d.get("pid", 0), d.get("name", "?"), d.get("cmdline", ""), error=d.get("error", ""),
                       seconds=d.get("seconds", 0.0))
    for t in d.get("threads", []):
        frames = [Frame(f.get("name", "?"), f.get("filename", "?"), int(f.get("line", 0))) for f in t.get("frames", [])]
        dump.threads.append(ThreadStack(t.get("thread_id", 0), t.get("name", ""), bool(t.get("active")),
                                        bool(t.get("owns_gil")), frames))
    return dump


def load_dumps(run_dir: Path) -> list[list[ProcessDump]]:
    history = []
    for path in sorted((run_dir / "stacks").glob("*.json")):
        try:
            history.append([_dump_from_dict(d) for d in json.loads(path.read_text()).get("processes", [])])
        except (OSError, ValueError):
            continue
    return history


def load_runs(directory: Path, recogniser: Recogniser, settings: Settings) -> list[Run]:
    """Every run of a session, re-read from its raw log and re-recognised (the knowledge base may
    have grown since), with the verdict and numbers the session recorded."""
    started = {e["run"]: e for e in read_events(directory) if e.get("kind") == "run_started"}
    summaries = _summaries(directory)
    bus = EventBus()  # nobody listens: a recorded run publishes into the void
    runs = []
    for run_dir in sorted((directory / "runs").iterdir(), key=lambda p: _run_number(p.name)):
        if not (run_dir / "output.log").exists():
            continue
        event = started.get(run_dir.name, {})
        spec = RunSpec(list(event.get("argv", [])), dict(event.get("env_delta", {})), event.get("cwd"),
                       event.get("label", ""), event.get("cause", "launch"))
        run = Run(run_dir.name, spec, run_dir, recogniser, bus, settings)
        with open(run_dir / "output.log", "rb") as handle:
            while chunk := handle.read(CHUNK):
                run._ingest(*run.store.ingest(chunk), had_data=True)
        run._ingest(*run.store.finish(), had_data=False)
        with run.lock:
            run.diagnosis.finish()
        summary = summaries.get(run_dir.name, {})
        run.verdict = summary.get("verdict") or "exited"
        run.verdict_reason = summary.get("reason", "")
        run.pid = summary.get("pid") or event.get("pid")
        run.returncode = summary.get("returncode")
        run.started = time.monotonic() - float(summary.get("seconds") or 0.0)
        run.ended = time.monotonic()
        run.dump_paths = list(summary.get("dumps", []))
        run.stuck = summary.get("stuck")
        run.recorded = True
        run.reader_done.set()
        run.exited.set()
        runs.append(run)
    return runs
