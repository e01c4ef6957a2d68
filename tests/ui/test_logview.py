"""The log view follows the tail: the last line is on screen, with or without a horizontal scrollbar."""

from __future__ import annotations

import re
import sys

import pytest

from tests.ui.test_app import running, wait_for


@pytest.mark.asyncio
@pytest.mark.parametrize("width", [50, 400], ids=["narrow-lines", "lines-wider-than-the-view"])
async def test_a_burst_then_silence_leaves_the_last_line_in_view(tmp_path, width: int, no_leaks) -> None:
    # everything arrives in one go, then nothing: no later line may be needed to fix the scroll
    code = f"for i in range(300): print(f'line {{i}} ' + 'x' * {width})"
    async with running(tmp_path, [sys.executable, "-c", code]) as (app, pilot):
        view = app.log_view
        await wait_for(lambda: view.rows == 300, what="all lines")
        await pilot.pause(0.5)
        shown = sorted(int(n) for n in re.findall(r"line&#160;(\d+)", app.export_screenshot()))
        assert shown[-1] == 299 and len(shown) == view.visible_rows, shown[-3:]
        assert view.follow
