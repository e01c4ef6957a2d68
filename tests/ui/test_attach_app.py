"""The TUI as an attach client of a detachable session (Pilot, real daemon, the simulator)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.faces.test_pairing import _sim
from tests.helpers import workbench
from tests.ui.test_app import SIZE, text_of, wait_for
from workbench.core.remote.attach_client import AttachClient, live_sessions
from workbench.core.remote.remote_engine import RemoteEngine
from workbench.ui.remote import make_remote_app


@pytest.fixture
def session(tmp_path: Path, port: int, monkeypatch: pytest.MonkeyPatch, no_leaks) -> Iterator[str]:
    runtime = tmp_path / "rt"
    monkeypatch.setenv("WORKBENCH_RUNTIME_DIR", str(runtime))
    result = workbench("--detachable", "--detach", "--", *_sim(port), timeout=60)
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    try:
        yield name
    finally:
        for live in live_sessions(runtime):
            try:
                workbench("stop", live.name, timeout=60)
            except subprocess.TimeoutExpired:
                pass
            if psutil.pid_exists(live.pid):
                psutil.Process(live.pid).kill()


def _engine(name: str, control: bool) -> RemoteEngine:
    (live,) = [s for s in live_sessions() if s.name == name]
    return RemoteEngine(AttachClient(live.socket, control=control, who={"user": "tui", "tty": "pts/7"})).connect()


@pytest.mark.asyncio
async def test_control_client_relaunches_and_a_read_only_one_follows(session: str) -> None:
    driver, watcher = _engine(session, control=True), _engine(session, control=False)
    driver_app, watcher_app = make_remote_app(driver, session), make_remote_app(watcher, session)
    try:
        async with watcher_app.run_test(size=SIZE) as watch_pilot:
            await wait_for(lambda: watcher_app.current_run() is not None, what="the mirrored run")
            await wait_for(lambda: watcher_app.current_run().verdict == "healthy", what="r1 healthy")
            await wait_for(lambda: watcher_app.log_view.rows > 20, what="the log from the file")
            assert "read-only" in watcher_app.sub_title
            await watch_pilot.press("r")  # refused: noted, nothing relaunched
            await wait_for(lambda: "read-only" in text_of(watcher_app, "#status"), what="the refusal")
            assert list(watcher.runs) == ["r1"]

            async with driver_app.run_test(size=SIZE) as drive_pilot:
                await wait_for(lambda: driver_app.current_run() is not None, what="driver's run")
                await drive_pilot.press("D")  # VLLM_LOGGING_LEVEL=DEBUG on the next relaunch
                await wait_for(lambda: "tui@pts/7: toggle VLLM_LOGGING_LEVEL=DEBUG for the next relaunch of r1"
                               in "\n".join(watcher_app.messages), what="the toggle on the shared timeline")
                await drive_pilot.press("r")
                await wait_for(lambda: driver_app.current_run() is not None and driver_app.current_run().id == "r2",
                               what="driver shows r2")
                # the other client follows: r2 in its pane, the timeline entry in its notes
                await wait_for(lambda: watcher_app.current_run().id == "r2", what="watcher shows r2")
                await wait_for(lambda: "tui@pts/7: relaunch r1 with VLLM_LOGGING_LEVEL=DEBUG"
                               in "\n".join(watcher_app.messages), what="the timeline note")
                await wait_for(lambda: watcher_app.current_run().verdict == "healthy", what="r2 healthy")
                await drive_pilot.press("q")
                await wait_for(lambda: driver.closed, what="driver detached")
            assert watcher.runs["r2"].alive  # detaching stopped nothing
    finally:
        driver.shutdown()
        watcher.shutdown()


def test_a_late_client_shows_the_sessions_own_phase_times(session: str) -> None:
    import json
    import time

    first = _engine(session, control=False)
    try:
        deadline = time.monotonic() + 60
        while first.runs.get("r1") is None or first.runs["r1"].verdict != "healthy":
            assert time.monotonic() < deadline, "r1 never became healthy"
            time.sleep(0.1)
        events_path = first.client.session_dir / "events.jsonl"
    finally:
        first.shutdown()
    late = _engine(session, control=False)  # reads the whole log in one go
    try:
        run = late.runs["r1"]
        deadline = time.monotonic() + 30
        while not run.diagnosis.phases.reached("serving"):
            assert time.monotonic() < deadline, "the mirror never reached serving"
            time.sleep(0.1)
        told = {e["phase"]: e["elapsed"] for e in map(json.loads, events_path.read_text().splitlines())
                if e.get("kind") == "phase" and e.get("run") == "r1"}
        shown = {r["name"]: r["start"] for r in run.diagnosis.phases.to_list()}
        assert told and all(abs(shown[name] - start) < 0.01 for name, start in told.items()), (told, shown)
    finally:
        late.shutdown()
