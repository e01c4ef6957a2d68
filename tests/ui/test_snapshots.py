"""SVG snapshots of the main layouts at a fixed terminal size (pytest-textual-snapshot).

The runs replay fixture logs through `cat`, and the few live values (PID, uptime, clock) are
pinned, so the pictures change only when the TUI's look does. Update with --snapshot-update.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workbench.core.engine.settings import Settings
from workbench.ui import app as app_module
from workbench.ui import panels
from workbench.ui.app import make_app

ROOT = Path(__file__).resolve().parent.parent.parent
LOGS = Path("tests") / "fixtures" / "logs"  # relative: the header shows the command
SIZE = (150, 42)


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "clock", lambda: "12:00:00")
    monkeypatch.setattr(panels, "monotonic", lambda: 2000.0)  # "ended N s ago" reads this clock
    # notes arrive in whatever order the runs end: keep them out of the picture
    monkeypatch.setattr(app_module.WorkbenchApp, "note", lambda self, text: None)
    monkeypatch.chdir(ROOT)


def replay(log: str) -> list[str]:
    return ["cat", str(LOGS / log)]


async def settle(pilot, runs: int = 1) -> None:
    app = pilot.app
    for _ in range(200):
        if len(app.runs) >= runs and all(app.engine.runs[r].verdict for r in app.runs):
            break
        await asyncio.sleep(0.05)
    for number, run_id in enumerate(app.runs, start=1):
        run = app.engine.runs[run_id]
        run.pid = 4200 + number
        run.started = 1000.0 + number
        records = run.diagnosis.phases.records
        for index, record in enumerate(records):  # the phases took 1 s each
            record.start, record.seconds = float(index), 1.0
        run.ended = run.started + len(records)
    app.messages = []
    app.refresh_side()
    for pane in app.panes:
        run = app.engine.runs.get(pane.run_id) if pane.run_id else None
        pane.refresh_header(run)
        pane.log.sync()
    await pilot.pause(0.3)


def make(tmp_path, log: str, layout: str):
    return make_app(replay(log), settings=Settings(smoke=False), session_dir=str(tmp_path / "s"), layout=layout)


def test_single_layout_with_a_root_cause(snap_compare, tmp_path, pinned_clock, no_leaks) -> None:
    app = make(tmp_path, "v0.11-kv-cache.log", "single")
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)
    finally:
        app.engine.shutdown()


def test_grid_layout(snap_compare, tmp_path, pinned_clock, no_leaks) -> None:
    app = make(tmp_path, "v0.11-cuda-oom.log", "grid")
    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=settle)
    finally:
        app.engine.shutdown()


def test_compare_layout_two_runs(snap_compare, tmp_path, pinned_clock, no_leaks) -> None:
    app = make(tmp_path, "v0.11-cuda-oom.log", "compare")

    async def two_runs(pilot) -> None:
        for _ in range(100):
            if app.runs:
                break
            await asyncio.sleep(0.05)
        second = app.engine.launch(replay("v0.11-healthy.log"))
        app.place_run(second, 1)
        await settle(pilot, runs=2)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=two_runs)
    finally:
        app.engine.shutdown()


def test_hung_pane_says_where_it_is_stuck(snap_compare, tmp_path, pinned_clock, no_leaks) -> None:
    """A run that stopped printing: amber verdict, where it sits (two dumps with the same frame:
    fixed here so the picture does not carry live PIDs and line numbers) and what to press next."""
    from workbench.core.probes.stacks import Frame, ProcessDump, ThreadStack

    # the start of a healthy log, then silence: stuck in distributed init, before loading
    command = ["sh", "-c", f"head -n 7 {LOGS / 'v0.11-healthy.log'}; exec sleep 600"]
    app = make_app(command, settings=Settings(smoke=False, stall_window=1.0), session_dir=str(tmp_path / "s"))

    async def hung(pilot) -> None:
        for _ in range(400):
            if app.runs and app.engine.runs[app.runs[0]].verdict == "hung":
                break
            await asyncio.sleep(0.05)
        run = app.engine.runs[app.runs[0]]
        frames = [Frame("wait_for_all_reduce", "vllm/distributed/parallel_state.py", 412),
                  Frame("init_device", "vllm/v1/worker/gpu_worker.py", 188)]
        dump = [ProcessDump(4202, "VLLM::EngineCore", "python -m vllm", [ThreadStack(7, "MainThread", True, True, frames)])]
        app.engine.dumps[run.id] = [dump, dump]
        run.verdict_reason = "no output and no progress for 1 s (stacks dumped)"
        await settle(pilot)
        from workbench.core.knowledge.stuck import analyze as analyze_stuck

        run.stuck = analyze_stuck(dump, {}, dump, since="12:00:00").to_dict()  # the banner reads the same dump
        # settle() gave the run a fixed PID: no more tree samples of whatever process has it now
        watcher = app.engine.watchers[run.id]
        watcher.cancel()
        watcher.join(30)
        run.tree_snapshot = []
        for pane in app.panes:
            pane.refresh_header(run)
        await pilot.pause(0.3)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=hung)
    finally:
        app.engine.shutdown()
