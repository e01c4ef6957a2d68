"""Pilot tests: keys pressed, engine commands issued, what is on screen — on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port
from workbench.core.engine.settings import Settings
from workbench.ui import run_actions
from workbench.ui.app import make_app
from workbench.ui.pane import FindingsList
from workbench.ui.screens import (
    ConfirmScreen,
    DebugVarsScreen,
    HelpScreen,
    PickScreen,
    PromptScreen,
    TextScreen,
)

SIM = [sys.executable, "-m", "workbench.sim"]
SIZE = (170, 48)


async def wait_for(predicate, timeout: float = 120.0, what: str = "condition") -> None:
    """Wait for a condition; the deadline is a backstop, generous for a busy machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s")


def text_of(app, selector: str) -> str:
    return "\n".join(str(w.render()) for w in app.query(selector))


def sim(scenario: str, *extra: str) -> list[str]:
    return [*SIM, scenario, "--port", str(free_port()), "--time-scale", "0.1", *extra]


@contextlib.asynccontextmanager
async def running(tmp_path, command: list[str], verdict: str | None = None, **kwargs):
    """The app on a command, with the first run reaching `verdict` (or just started)."""
    app = make_app(command, settings=Settings(stall_window=30), session_dir=str(tmp_path / "session"), **kwargs)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: app.current_run() is not None, what="first run")
            if verdict is not None:
                await wait_for(lambda: app.current_run().verdict == verdict, what=f"verdict {verdict}")
                await pilot.pause(1.2)  # one side-panel refresh
            yield app, pilot
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_healthy_run_shows_phases_verdict_and_stack_dumps(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        assert "verdict healthy" in text_of(app, ".pane-header")
        assert "ready" in text_of(app, ".phases") and "graph capture" in text_of(app, ".phases")
        assert app.log_view.rows > 30
        await pilot.press("d")
        await wait_for(lambda: "stacks dumped" in text_of(app, "#status"), what="first dump")
        await pilot.press("d")
        await wait_for(lambda: len(app.engine.dumps[app.current_run().id]) == 2, what="second dump")
        await pilot.press("o")
        await wait_for(lambda: isinstance(app.screen, TextScreen), what="isinstance(app.screen, TextScreen)")
        page = str(app.screen.query_one("Static").render())
        assert "PID" in page and "did not move since dump 1" in page
        await pilot.press("escape")
        await pilot.press("ctrl+l")
        await wait_for(lambda: len(app.engine.dumps[app.current_run().id]) == 3, what="dump with locals")
        latest = json.loads(Path(app.current_run().dump_paths[-1]).read_text())
        assert latest["cause"] == "key d with locals"
        await pilot.press("q")
        await wait_for(lambda: app.engine.closed, what="clean quit")


@pytest.mark.asyncio
async def test_eager_key_opens_the_compare_layout_with_a_conclusion(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("oom-graph-capture"), "failed") as (app, pilot):
        assert "root cause" in text_of(app, ".pinned")
        await pilot.press("e")
        await wait_for(lambda: len(app.runs) == 2, what="the eager rerun")
        second = app.engine.runs[app.runs[1]]
        assert "--enforce-eager" in second.spec.argv
        await wait_for(lambda: len(app.panes) == 2 and app.layout_spec.name == "compare", what="compare layout")
        await wait_for(lambda: second.verdict == "healthy", what="eager healthy")
        await wait_for(lambda: "fails only in graph mode" in text_of(app, "#conclusion"), what="conclusion")
        await wait_for(lambda: "verdict failed" in text_of(app, ".pane-header")
                       and "verdict healthy" in text_of(app, ".pane-header"), what="both headers")


@pytest.mark.asyncio
async def test_apply_key_relaunches_with_the_selected_findings_fix(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("kv-cache-too-small"), "failed") as (app, pilot):
        findings = app.query_one(FindingsList)
        assert "KV cache too small" in findings.findings[0].title or findings.findings[0].id == "kv_cache_too_small"
        findings.focus()
        findings.highlighted = 0
        await pilot.press("enter")  # jumps the log to the finding's line
        await wait_for(lambda: app.log_view.cursor == app.current_run().root_cause().first_seq, what="the jump")
        root = app.current_run().root_cause()
        assert app.log_view.cursor == root.first_seq
        await pilot.press("a")
        await wait_for(lambda: len(app.runs) == 2, what="relaunch with the fix")
        second = app.engine.runs[app.runs[1]]
        assert second.spec.argv[-2:] == ["--max-model-len", "8192"]
        await wait_for(lambda: second.verdict == "healthy", what="fixed run healthy")
        assert app.pane_runs[0] == second.id


@pytest.mark.asyncio
async def test_debug_variables_toggle_show_guard_rails_and_apply_on_relaunch(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        await pilot.press("D")
        assert "VLLM_LOGGING_LEVEL=DEBUG" in text_of(app, ".debug")
        assert "+VLLM_LOGGING_LEVEL=DEBUG" in text_of(app, ".debug")  # what the next relaunch changes
        await pilot.press("t")
        await wait_for(lambda: isinstance(app.screen, DebugVarsScreen), what="isinstance(app.screen, DebugVarsScreen)")
        names = [v.name for v in app.debug_vars]
        options = app.screen.query_one("#debug-options")
        options.highlighted = names.index("VLLM_TRACE_FUNCTION")
        await pilot.press("enter")
        await wait_for(lambda: app.env_delta["VLLM_TRACE_FUNCTION"] == "1", what="app.env_delta['VLLM_TRACE_FUNCTION'] == '1'")
        assert "100x" in str(app.screen.query_one("#debug-guard").render())
        await pilot.press("enter")  # cycles back off
        assert "VLLM_TRACE_FUNCTION" not in app.env_delta
        await pilot.press("escape")
        await pilot.press("r")
        await wait_for(lambda: len(app.runs) == 2, what="relaunch")
        second = app.engine.runs[app.runs[1]]
        assert second.spec.env_delta == {"VLLM_LOGGING_LEVEL": "DEBUG"}
        await wait_for(lambda: any("DEBUG" in line for line in second.store.lines(0, len(second.store))), what="DEBUG lines")


@pytest.mark.asyncio
async def test_search_filter_error_jumps_and_copy(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("oom-load"), "failed") as (app, pilot):
        run = app.current_run()
        view = app.log_view
        await pilot.press("right_square_bracket")
        assert view.cursor is not None and run.diagnosis.marks.get(view.seq_of(view.cursor)) == "error"
        first_error = view.cursor
        await pilot.press("right_square_bracket")
        assert view.cursor is None or view.cursor >= first_error
        await pilot.press("c")
        assert view.seq_of(view.cursor) == run.root_cause().first_seq
        await pilot.press("y")
        assert app.clipboard == run.store.lines(view.cursor, view.cursor + 1)[0]
        await pilot.press("v", "k", "k", "y")
        assert app.clipboard.count("\n") == 2
        await pilot.press("g")
        assert view.cursor == 0
        await pilot.press("slash")
        await wait_for(lambda: isinstance(app.screen, PromptScreen), what="the prompt")
        await pilot.press(*"Traceback", "enter")
        await wait_for(lambda: view.cursor not in (None, 0), what="search hit")
        assert "Traceback" in view.selected_text()
        await pilot.press("ampersand")
        await wait_for(lambda: isinstance(app.screen, PromptScreen), what="the prompt")
        await pilot.press(*"ERROR", "enter")
        await wait_for(lambda: view.filter_scanned == len(run.store), what="filter scan")
        assert 0 < view.rows < len(run.store)
        assert all("ERROR" in run.store.lines(view.seq_of(r), view.seq_of(r) + 1)[0] for r in range(view.rows))
        await pilot.press("ampersand")
        await wait_for(lambda: isinstance(app.screen, PromptScreen), what="the prompt")
        await pilot.press(*["backspace"] * 5, "enter")
        await wait_for(lambda: view.rows == len(run.store), what="view.rows == len(run.store)")
        await pilot.press("G")
        assert view.follow and view.cursor is None


@pytest.mark.asyncio
async def test_talk_to_a_pdb_prompt_in_the_child(tmp_path, no_leaks) -> None:
    script = tmp_path / "stops_in_pdb.py"
    script.write_text("def f():\n    value = 41\n    breakpoint()\n    print('resumed with', value + 1)\n\nf()\n")
    async with running(tmp_path, [sys.executable, str(script)]) as (app, pilot):
        run = app.current_run()
        await wait_for(lambda: "debugger prompt waiting" in text_of(app, ".pane-header"), what="pdb prompt noticed")
        await pilot.press("i")
        assert app.typing_into == run.id
        await pilot.press("p", "space", "v", "a", "l", "u", "e", "enter")
        await wait_for(lambda: any(line.strip() == "41" for line in run.store.lines(0, len(run.store))), what="pdb answer")
        await pilot.press("c", "enter")
        await wait_for(lambda: any("resumed with 42" in line for line in run.store.lines(0, len(run.store))), what="resumed")
        await pilot.press("ctrl+right_square_bracket")
        assert app.typing_into is None
        await wait_for(lambda: not run.alive, what="script end")


@pytest.mark.asyncio
async def test_kill_asks_first_and_stop_stops_the_tree(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        run = app.current_run()
        await pilot.press("K")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="isinstance(app.screen, ConfirmScreen)")
        await pilot.press("n")
        await pilot.pause(0.5)
        assert run.alive
        await pilot.press("K")
        await wait_for(lambda: isinstance(app.screen, ConfirmScreen), what="the confirm")
        await pilot.press("y")
        await wait_for(lambda: not run.alive, what="killed")
        assert run.stop_signal == "SIGKILL"


@pytest.mark.asyncio
async def test_smoke_key_reports_status_and_latency(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        before = len(app.current_run().smoke_results)
        await pilot.press("s")
        await wait_for(lambda: len(app.current_run().smoke_results) > before, what="smoke result")
        await wait_for(lambda: "smoke 200" in text_of(app, "#status"), what="smoke note")


@pytest.mark.asyncio
async def test_help_lists_every_binding_and_the_palette_offers_them(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy")) as (app, pilot):
        await pilot.press("question_mark")
        await wait_for(lambda: isinstance(app.screen, HelpScreen), what="isinstance(app.screen, HelpScreen)")
        page = "\n".join("".join(seg.text for seg in w.render_line(y))
                          for w in app.screen.query("Static") for y in range(w.size.height))
        for _key, description, _ in app.binding_rows():
            assert description in page, description
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Dump stacks") for t in titles) and "Layout: grid" in titles


@pytest.mark.asyncio
async def test_grid_layout_shows_process_tree_and_stacks(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy", layout="grid") as (app, pilot):
        await wait_for(lambda: "VLLM::EngineCor" in text_of(app, ".tree"), what="process tree")  # comm: 15 chars
        assert str(app.current_run().pid) in text_of(app, ".tree")
        await pilot.press("d")
        await wait_for(lambda: "PID" in text_of(app, ".stacks") and "dump 1" in text_of(app, ".stacks"), what="stacks panel")
        await pilot.press("l")  # the next layout in name order: perf
        await wait_for(lambda: app.layout_spec.name == "perf", what="layout switch")
        assert app.log_view.rows > 30  # the log is read back from the store, nothing lost


@pytest.mark.asyncio
async def test_profile_key_records_a_flame_graph(tmp_path, no_leaks, monkeypatch) -> None:
    monkeypatch.setattr(run_actions, "PROFILE_SECONDS", 1.0)
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        await pilot.press("p")
        await wait_for(lambda: isinstance(app.screen, PickScreen), what="isinstance(app.screen, PickScreen)")
        await pilot.press("enter")
        await wait_for(lambda: "profile of PID" in text_of(app, "#status"), what="profile")
        profiles = list((app.current_run().dir / "profiles").glob("*.svg"))
        assert profiles and profiles[0].read_text().lstrip().startswith(("<?xml", "<svg"))


@pytest.mark.asyncio
async def test_plog_key_switches_the_pane_to_the_ascend_plog(tmp_path, no_leaks) -> None:
    from tests.core.logs.test_plog import CHILD

    async with running(tmp_path, [sys.executable, "-c", CHILD],
                       env_delta={"ASCEND_PROCESS_LOG_PATH": str(tmp_path / "ascend")}) as (app, pilot):
        run = app.current_run()
        await wait_for(lambda: run.plog_store is not None and len(run.plog_store) == 2, what="plog lines")
        await pilot.press("P")
        await wait_for(lambda: app.log_view.source == "plog" and app.log_view.rows == 2, what="app.log_view.source == 'plog' and app.log_view.rows == 2")
        await pilot.press("right_square_bracket")
        assert "EJ0003" in app.log_view.selected_text()
        await pilot.press("P")
        assert app.log_view.source == "output"


@pytest.mark.asyncio
async def test_open_a_past_session_read_only_and_relaunch_from_it(tmp_path, state_dir, no_leaks) -> None:
    from tests.helpers import workbench
    from workbench.core.engine.recorded import load_runs

    session = tmp_path / "past"
    done = workbench("run", "--headless", "--quiet", "--session-dir", str(session), "--",
                     *sim("kv-cache-too-small"))
    assert done.returncode == 10
    app = make_app([], settings=Settings(stall_window=30), session_dir=str(tmp_path / "viewer"), launch=False)
    try:
        for run in load_runs(session, app.engine.recogniser, app.engine.settings):
            app.engine.adopt(run)
        app.runs, app.pane_runs = ["r1"], ["r1"]
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            await wait_for(lambda: "verdict failed" in text_of(app, ".pane-header"), what="recorded header")
            assert "KV cache" in text_of(app, ".pinned")
            await pilot.press("c")
            assert app.log_view.seq_of(app.log_view.cursor) == app.current_run().root_cause().first_seq
            await pilot.press("r")
            await wait_for(lambda: len(app.runs) == 2 and app.runs[1] == "r2", what="relaunch from the recording")
            await wait_for(lambda: app.engine.runs["r2"].verdict == "failed", what="relaunched verdict")
    finally:
        app.engine.shutdown()
    assert not (tmp_path / "viewer" / "runs" / "r1").exists()  # the recording is not rewritten elsewhere


@pytest.mark.asyncio
async def test_record_key_writes_a_replayable_recipe(tmp_path, no_leaks, monkeypatch) -> None:
    from workbench.core.record.recipe import load_recipe

    monkeypatch.chdir(tmp_path)
    async with running(tmp_path, sim("kv-cache-too-small"), "failed",
                       env_delta={"HF_TOKEN": "hf_notinanyfile1234", "NCCL_DEBUG": "INFO"}) as (app, pilot):
        await pilot.press("R")
        written = list(tmp_path.glob("recipe-r1-*.toml"))
        assert len(written) == 1 and "hf_notinanyfile1234" not in written[0].read_text()
        recipe = load_recipe(written[0])
        assert recipe.expect == "kv_cache_too_small" and recipe.env == {"NCCL_DEBUG": "INFO"}
        assert recipe.requires_env == ["HF_TOKEN"] and recipe.command == app.current_run().spec.argv


@pytest.mark.asyncio
async def test_graph_capture_note_follow_pause_panes_next_run_native_dump_and_stop(tmp_path, no_leaks) -> None:
    # slow capture at scale 0.4: about 10 s in graph capture, long enough to see the note
    command = [*SIM, "slow-graph-capture", "--port", str(free_port()), "--time-scale", "0.4"]
    async with running(tmp_path, command) as (app, pilot):
        run = app.current_run()
        await wait_for(lambda: run.phase() == "graph_capture", what="graph capture")
        await wait_for(lambda: "graph capture can take minutes" in text_of(app, ".phases"), what="'graph capture can take minutes' in text_of(app, '.phases')")
        await pilot.press("f")
        assert not app.log_view.follow and "paused" in text_of(app, "#status")
        rows = app.log_view.rows
        await pilot.press("f")
        assert app.log_view.follow and "following" in text_of(app, "#status")
        await pilot.press("ctrl+n")
        await wait_for(lambda: len(app.engine.dumps.get(run.id, [])) == 1, what="native dump")
        assert json.loads(Path(run.dump_paths[-1]).read_text())["cause"].endswith("with native frames")
        await wait_for(lambda: run.verdict == "healthy", what="healthy after the capture")
        assert app.log_view.rows > rows
        await pilot.press("x")
        await wait_for(lambda: not run.alive, what="stopped by x")
        assert "stopped" in text_of(app, "#status")
        await pilot.press("e")  # a second run, in a second pane
        await wait_for(lambda: len(app.runs) == 2 and len(app.panes) == 2, what="second pane")
        assert app.focus_index == 0
        await pilot.press("w")
        assert app.focus_index == 1 and app.panes[1].has_class("focused") and app.current_run().id == app.runs[1]
        await pilot.press("greater_than_sign")  # this pane now shows the other run
        assert app.pane_runs[1] == app.runs[0]


@pytest.mark.asyncio
async def test_isolation_matrix_fills_its_table_as_runs_end(tmp_path, no_leaks) -> None:
    from workbench.core.record.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "graph-capture-isolation.toml")
    app = make_app([], settings=Settings(stall_window=30), session_dir=str(tmp_path / "session"),
                   matrix=(recipe, None))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: app.current_run() is not None, what="the base run")
            await wait_for(lambda: "base" in text_of(app, "#conclusion"), what="the first row")
            assert "running the next variant" in text_of(app, "#conclusion")
            await wait_for(lambda: "conclusion:" in text_of(app, "#conclusion"), timeout=120, what="the conclusion")
            table = text_of(app, "#conclusion")
            assert "fails in graph mode only (cuda_oom)" in table and "--enforce-eager" in table
            rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.split()}
            assert "failed" in rows["base"] and "healthy" in rows["eager"] and "shorter-context" in rows
            assert len(app.runs) == 1 + len(recipe.variants)  # every variant ran in this session, in turn
            assert not any(app.engine.runs[r].alive for r in app.runs)  # each stopped before the next
            await pilot.press("q")
    finally:
        app.engine.shutdown()
