"""The grid's cells fill their areas and keep their borders clean; screenshots land in the
session directory with their spaces."""

from __future__ import annotations

import html
import re
from pathlib import Path

from tests.ui.test_app import text_of, wait_for
from workbench.ui.screenshot import svg_with_spaces

TEXT = re.compile(r'<text[^>]*clip-path="url\(#[^)]*-line-(\d+)\)">([^<]*)</text>')


def svg_rows(svg: str) -> dict[int, str]:
    """What each screen row reads as, taking the SVG's text elements in order (no x positions)."""
    rows: dict[int, str] = {}
    for line, text in TEXT.findall(svg):
        rows[int(line)] = rows.get(int(line), "") + html.unescape(text).replace("\xa0", " ").rstrip("\n")
    return rows


def screen_rows(app) -> list[str]:
    rows = svg_rows(svg_with_spaces(app.export_screenshot()))
    return [rows.get(i, "") for i in range(max(rows) + 1)]


async def check_grid(app, pilot) -> None:
    """The grid's cells fill their areas; after new lines and a dump the log's rows stay inside
    its cell (run by test_glance on a shared run in the grid layout)."""
    cells = app.pane.query_one(".cells")
    tree = app.pane.query_one("Static.tree")
    stacks = app.pane.query_one(".stacks-box")
    assert tree.outer_size.height == stacks.outer_size.height  # the bottom row: two full cells
    assert tree.outer_size.height >= cells.size.height // 3 - 1
    await pilot.press("d")
    await wait_for(lambda: "stacks dumped" in text_of(app, "#status"), what="a dump")
    await pilot.pause(1.2)  # side panels refreshed after new lines and a dump
    log = app.log_view
    border_x = log.region.right - 1  # the log cell's right border
    rows = screen_rows(app)
    for y in range(log.content_region.y, log.content_region.bottom):
        assert rows[y][border_x] == "│", (y, rows[y][border_x - 3:border_x + 3])
        assert len(rows[y]) <= app.size.width
    for y in range(log.size.height):
        assert log.render_line(y).cell_length == log.scrollable_content_region.width


async def check_screenshot(app, pilot) -> None:
    """The palette's Screenshot lands in the session dir (no ~/Downloads needed), says where, and
    its SVG reads with the spaces between styled segments (run by test_glance on a shared run)."""
    seen: list[str] = []
    original = app.note
    app.note = lambda text: (seen.append(text), original(text))[1]
    command = next(c for c in app.get_system_commands(app.screen) if c.title == "Screenshot")
    command.callback()
    await wait_for(lambda: any(t.startswith("screenshot saved: ") for t in seen), what="screenshot saved")
    path = Path(next(t for t in seen if t.startswith("screenshot saved: ")).split(": ", 1)[1])
    assert path.parent == Path(app.engine.session.dir) / "screenshots" and path.exists()
    rows = svg_rows(path.read_text())
    header = next(r for r in rows.values() if "verdict" in r and "PID" in r)
    run = app.current_run()
    assert f"{run.id} verdict healthy  PID {run.pid}" in header, header
