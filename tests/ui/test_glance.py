"""What the TUI shows a vLLM engineer at a glance: the run it names, readable compare panes,
headers that keep their status, verdict colours, help, search/follow feedback, live stopping."""

from __future__ import annotations

import re
import time

import pytest

from tests.ui.test_app import running, sim, wait_for

PID = re.compile(r"pid=(\d+)")


def visible_lines(view) -> list[str]:
    """The log rows as drawn now (the widget's own render, not the store)."""
    return ["".join(seg.text for seg in view.render_line(y)) for y in range(view.visible_rows)]


def pids_on_screen(view) -> set[int]:
    return {int(m.group(1)) for line in visible_lines(view) for m in PID.finditer(line)}


@pytest.mark.asyncio
async def test_after_relaunch_the_log_shows_only_the_new_runs_processes(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
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
async def test_compare_panes_show_forty_characters_of_each_message(tmp_path, no_leaks) -> None:
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
        await pilot.press("F")  # the full prefix, and back
        assert all(p.log.full_prefix for p in app.panes)
        assert "pid=" in "".join(visible_lines(app.log_view))
        await pilot.press("F")
        assert "pid=" not in "".join(visible_lines(app.log_view))
