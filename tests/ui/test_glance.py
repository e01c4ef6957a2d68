"""What the TUI shows a vLLM engineer at a glance: the run it names, readable compare panes,
headers that keep their status, verdict colours, help, search/follow feedback, live stopping."""

from __future__ import annotations

import re
import sys
import time

import pytest

from tests.ui.test_app import running, sim, text_of, wait_for

PID = re.compile(r"pid=(\d+)")


def visible_lines(view) -> list[str]:
    """The log rows as drawn now (the widget's own render, not the store)."""
    return ["".join(seg.text for seg in view.render_line(y)) for y in range(view.visible_rows)]


def pids_on_screen(view) -> set[int]:
    return {int(m.group(1)) for line in visible_lines(view) for m in PID.finditer(line)}


@pytest.mark.asyncio
async def test_after_relaunch_the_log_shows_only_the_new_runs_processes(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        await pilot.press("F")  # the full prefix names each line's PID
        old = app.current_run()
        old_pids = set(old.known_pids) | pids_on_screen(app.log_view)
        assert pids_on_screen(app.log_view) & old_pids
        await pilot.press("r")
        await wait_for(lambda: len(app.runs) == 2 and app.pane.run_id == app.runs[1], what="relaunch placed")
        new = app.engine.runs[app.runs[1]]
        await wait_for(lambda: len(new.store) > 5, what="new run's first lines")
        shown_at = time.monotonic()
        await wait_for(lambda: pids_on_screen(app.log_view) and not pids_on_screen(app.log_view) & old_pids,
                       timeout=2.0, what="only the new run's PIDs on screen")
        assert time.monotonic() - shown_at <= 2.0
        assert pids_on_screen(app.log_view) <= {new.pid, *new.known_pids} | _sim_children(new)
        # `>` cycles the pane to r1 and back: each time only that run's lines
        await pilot.press("greater_than_sign")
        await wait_for(lambda: app.pane.run_id == old.id and pids_on_screen(app.log_view)
                       and not pids_on_screen(app.log_view) - old_pids, timeout=2.0, what="r1 again")


def _sim_children(run) -> set[int]:
    """PIDs the new run's log names: its own lines say which processes are its."""
    return {int(m.group(1)) for line in run.store.lines(0, len(run.store)) for m in PID.finditer(line)}


@pytest.mark.asyncio
async def test_compare_panes_show_forty_characters_and_an_oom_in_graph_capture_applies_eager_first(tmp_path, no_leaks) -> None:
    from workbench.core.logs.prefix import split_prefix

    async with running(tmp_path, sim("oom-graph-capture"), "failed", layout="compare") as (app, pilot):
        second = app.engine.launch(sim("healthy"))
        app.place_run(second, 1)
        await wait_for(lambda: second.verdict == "healthy", what="second run healthy")
        await pilot.pause(0.3)
        for pane in app.panes:
            view = pane.log
            top = int(view.scroll_offset.y)
            rows = visible_lines(view)
            checked = 0
            for y, drawn in enumerate(rows):
                if top + y >= view.rows:
                    break
                line = view.store.lines(view.seq_of(top + y), view.seq_of(top + y) + 1)[0]
                message = line[split_prefix(line).message_start:].rstrip()
                want = message[:40]
                assert want in drawn, f"pane {pane.index} row {y}: {want!r} not in {drawn!r}"
                checked += 1
            assert checked >= 10
        failed_header = app.panes[0].query_one(".pane-header")
        assert coloured(style_of(failed_header, "failed"), "red")  # a verdict of its own colour
        await pilot.press("F")  # the full prefix, and back
        assert all(p.log.full_prefix for p in app.panes)
        assert "pid=" in "".join(visible_lines(app.log_view))
        await pilot.press("F")
        assert "pid=" not in "".join(visible_lines(app.log_view))
        app.focus_index = 0  # the OOM in graph capture: the fix offered and applied first
        root = app.current_run().root_cause()
        assert root.phase == "graph_capture"
        await wait_for(lambda: "(a applies)" in findings_text(app), what="findings drawn")
        prompt = findings_text(app)
        marked = next(line for line in prompt.splitlines() if "(a applies)" in line)
        assert "--enforce-eager" in marked
        assert root.actions[0].text in prompt  # in full, not cut
        await pilot.press("a")
        await wait_for(lambda: len(app.runs) == 3, what="relaunch with the fix")
        fixed = app.engine.runs[app.runs[2]]
        assert "--enforce-eager" in fixed.spec.argv and "--max-model-len" not in fixed.spec.argv
        assert app.pane_runs[0] == fixed.id
        await wait_for(lambda: fixed.verdict == "healthy", what="eager run healthy")


def row(widget, y: int) -> str:
    return "".join(seg.text for seg in widget.render_line(y))


def style_of(widget, word: str):
    """The style the widget renders `word` in (the first segment that contains it)."""
    for y in range(widget.size.height):
        for seg in widget.render_line(y):
            if word in seg.text:
                return seg.style
    raise AssertionError(f"{word!r} not drawn")


def findings_text(app) -> str:
    from workbench.ui.pane import FindingsList

    box = app.pane.query_one(FindingsList)
    return "\n".join(str(box.get_option_at_index(i).prompt) for i in range(box.option_count))


def coloured(style, name: str) -> bool:
    from rich.color import Color

    return style is not None and style.color is not None and style.color.get_truecolor() == Color.parse(name).get_truecolor()


LONG = ["--max-num-seqs", "256", "--gpu-memory-utilization", "0.9", "--max-model-len", "8192",
        "--tensor-parallel-size", "1", "--model", "Qwen/Qwen2.5-0.5B-Instruct-with-a-long-name"]


@pytest.mark.asyncio
async def test_grid_cells_and_a_header_that_keeps_its_status_row_and_says_the_run_ended(tmp_path, no_leaks) -> None:
    from tests.ui.test_grid_and_screenshots import check_grid

    async with running(tmp_path, sim("healthy", *LONG), "healthy", layout="grid") as (app, pilot):
        await check_grid(app, pilot)
        header = app.pane.query_one(".pane-header")
        await wait_for(lambda: "PID" in row(header, 0) and "verdict healthy" in row(header, 0), what="status row")
        assert coloured(style_of(header, "healthy"), "green")
        assert "up " in row(header, 0)
        await pilot.press("x")
        await wait_for(lambda: "ended" in row(header, 0) and "SIGINT" in row(header, 0), what="ended in the header")
        first, ran = row(header, 0), app.current_run().elapsed()
        await wait_for(lambda: row(header, 0) != first, timeout=5, what="the ago count moving")
        assert "up " not in row(header, 0) and f"ran {ran:.0f}s" in row(header, 0)  # uptime stopped
        await wait_for(lambda: "no live processes" in text_of(app, ".tree"), what="tree panel emptied")
        assert "sleeping" not in text_of(app, ".tree")


@pytest.mark.asyncio
async def test_a_hung_pane_is_amber_and_says_where_it_is_stuck(tmp_path, no_leaks) -> None:
    from workbench.core.engine.settings import Settings
    from workbench.ui.app import make_app

    app = make_app(sim("hang"), settings=Settings(stall_window=3), session_dir=str(tmp_path / "s"))
    try:
        async with app.run_test(size=(170, 48)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "hung",
                           timeout=60, what="hung verdict")
            header = app.pane.query_one(".pane-header")
            await wait_for(lambda: "verdict hung" in row(header, 0), what="hung header")
            assert coloured(style_of(header, "hung"), "dark_orange")
            await wait_for(lambda: "stuck in" in findings_text(app), what="stuck summary")
            findings = findings_text(app)
            assert "no findings" not in findings and "o shows the stacks" in findings
            assert "wait_for_all_reduce" in findings or "PID" in findings
            await pilot.pause(0.2)
    finally:
        app.engine.shutdown()


def screen_rows(app) -> list[str]:
    """Every drawn row of the widgets on the top screen."""
    return ["".join(seg.text for seg in w.render_line(y)).rstrip()
            for w in app.screen.query("Static") for y in range(w.size.height)]


async def check_help(app, pilot) -> None:
    """Keys as printed on them, aligned columns, Esc said; the same screen each time."""
    from workbench.ui.screens import HelpScreen

    await pilot.press("question_mark")
    await wait_for(lambda: isinstance(app.screen, HelpScreen), what="help open")
    await pilot.pause(0.1)
    rows = screen_rows(app)
    page = "\n".join(rows)
    assert "Esc" in page and "closes" in page
    for internal in ("slash", "ampersand", "right_square_bracket", "greater_than_sign", "question_mark"):
        assert internal not in page, internal
    search = next(r for r in rows if "Search the whole log" in r)
    assert search.split()[0] == "/"
    # columns align: each row is key | description | tooltip, a wrapped tooltip continues
    # in the tooltip column (never back at column 0)
    desc_col, tip_col = search.index("Search"), search.index("Search the whole log")
    body = [r for r in rows if r.strip() and not r.startswith("Keys")]
    continued = [r for r in body if not r[:tip_col].strip()]
    assert continued, "no tooltip long enough to wrap at 170 columns"
    for r in body:
        if r in continued:
            continue
        assert r[:desc_col].strip() and r[desc_col - 1] == " " and r[tip_col - 1] == " ", r
    first = app.screen
    await pilot.press("escape")
    await pilot.press("question_mark")
    await wait_for(lambda: isinstance(app.screen, HelpScreen), what="help again")
    assert app.screen is first  # the same screen, not rebuilt
    await pilot.press("escape")


async def check_search(app, pilot) -> None:
    """match N/M, wrapped, no match; a paused tail says how to resume."""
    from workbench.ui.screens import PromptScreen

    async def search(pilot, app, text: str) -> None:
        await pilot.press("slash")
        await wait_for(lambda: isinstance(app.screen, PromptScreen), what="search prompt")
        app.screen.query_one("Input").value = text
        await pilot.press("enter")

    store = app.current_run().store
    total = sum(1 for line in store.lines(0, len(store)) if "Capturing CUDA graphs" in line)
    assert total >= 2
    await search(pilot, app, "Capturing CUDA graphs")
    await wait_for(lambda: f"match 1/{total}" in text_of(app, "#status"), what="match 1/N")
    for number in range(2, total + 1):
        await pilot.press("n")
        await wait_for(lambda n=number: f"match {n}/{total}" in text_of(app, "#status"), what=f"match {number}")
    await pilot.press("n")
    await wait_for(lambda: f"match 1/{total}" in text_of(app, "#status") and "wrapped" in text_of(app, "#status"),
                   what="wrapped to the top")
    header = app.pane.query_one(".pane-header")
    await wait_for(lambda: "following paused: f or G resumes" in row(header, 1), what="paused shown")
    await pilot.press("G")
    await wait_for(lambda: "following paused" not in row(header, 1), what="following again")
    await search(pilot, app, "no-such-line-anywhere")
    await wait_for(lambda: "no match for 'no-such-line-anywhere'" in text_of(app, "#status"), what="no match")


@pytest.mark.asyncio
async def test_help_search_feedback_and_screenshots_on_one_run(tmp_path, no_leaks, monkeypatch) -> None:
    from tests.ui.test_grid_and_screenshots import check_screenshot

    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        await check_help(app, pilot)
        await check_search(app, pilot)
        await check_screenshot(app, pilot)


STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(600)"]


@pytest.mark.asyncio
async def test_stopping_shows_each_signal_as_it_is_sent(tmp_path, no_leaks) -> None:
    from workbench.core.engine.settings import Settings
    from workbench.ui.app import make_app

    app = make_app(STUBBORN, settings=Settings(smoke=False, stop_int_timeout=1.0, stop_term_timeout=1.0),
                   session_dir=str(tmp_path / "s"))
    seen: list[str] = []
    original = app.note
    app.note = lambda text: (seen.append(text), original(text))[1]
    try:
        async with app.run_test(size=(170, 48)) as pilot:
            await wait_for(lambda: app.current_run() is not None and len(app.current_run().store) >= 1, what="up")
            run_id = app.current_run().id
            await pilot.press("x")
            await wait_for(lambda: any("stopped (SIGTERM)" in t for t in seen), what="stopped by SIGTERM")
            steps = [t for t in seen if t.startswith(("stopping", f"stopping {run_id}"))]
            assert steps[0].startswith(f"stopping {run_id} (PID")
            assert any("SIGINT sent" in t and "SIGTERM in 1 s" in t for t in steps), steps
            assert any("SIGTERM sent" in t and "SIGKILL in 1 s" in t for t in steps), steps
            sigint = next(i for i, t in enumerate(seen) if "SIGINT sent" in t)
            assert sigint < next(i for i, t in enumerate(seen) if "SIGTERM sent" in t)  # live, in order
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_eager_rerun_takes_a_free_port_and_a_smoke_goes_only_to_a_live_run(tmp_path, no_leaks) -> None:
    seen: list[str] = []
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        original = app.note
        app.note = lambda text: (seen.append(text), original(text))[1]
        first = app.current_run()
        await pilot.press("e")
        await wait_for(lambda: len(app.runs) == 2 and len(app.panes) == 2, what="eager rerun in compare")
        second = app.engine.runs[app.runs[1]]
        assert second.address[1] != first.address[1] and "--enforce-eager" in second.spec.argv
        await wait_for(lambda: second.verdict == "healthy", what="eager rerun healthy on its own port")
        assert first.alive and any(f"on port {second.address[1]}" in t and "keeps running" in t for t in seen)
        # the first run stopped: a smoke to it is refused, not sent to whoever holds its port now
        app.focus_index = app.pane_runs.index(first.id)
        await pilot.press("x")
        await wait_for(lambda: not first.alive, what="first run stopped")
        before = len(first.smoke_results)
        await pilot.press("s")
        await wait_for(lambda: any("is not running: no smoke sent" in t for t in seen), what="smoke refused")
        assert len(first.smoke_results) == before
        # E: the eager rerun on the same port, saying it stopped the run holding it
        app.focus_index = app.pane_runs.index(second.id)
        await pilot.press("E")
        await wait_for(lambda: len(app.runs) == 3, what="same-port rerun")
        third = app.engine.runs[app.runs[2]]
        assert third.address[1] == second.address[1] and not second.alive
        assert any(f"stopped {second.id} to free port {second.address[1]}" in t for t in seen)
