"""The hung pane says where the tree is stuck: a banner above the log, the stacks panel's head."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.helpers import free_port
from workbench.core.engine.settings import Settings
from workbench.ui.app import make_app
from workbench.ui.stuckview import stuck_banner_text

SIM = [sys.executable, "-m", "workbench.sim"]


async def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout} s")


def text_of(app, selector: str) -> str:  # noqa: ANN001
    return "\n".join(str(w.render()) for w in app.query(selector))


def test_banner_is_empty_unless_hung_or_stuck() -> None:
    idle = {"summary": ["not stuck: EngineCore idle, waiting for requests"], "stuck": False}
    assert stuck_banner_text("healthy", idle) == ""
    assert stuck_banner_text(None, None) == ""
    assert "not stuck" in stuck_banner_text("hung", idle)
    many = {"summary": [f"line {i}" for i in range(5)], "stuck": True}
    banner = stuck_banner_text(None, many)
    assert "line 0" in banner and "line 3" not in banner and "+2 more" in banner


@pytest.mark.asyncio
async def test_hung_tp_pane_shows_the_odd_rank_above_the_log_and_in_the_stacks_panel(tmp_path, no_leaks) -> None:
    command = [*SIM, "tp-hang", "--port", str(free_port()), "--time-scale", "0.1"]
    app = make_app(command, settings=Settings(stall_window=3), session_dir=str(tmp_path / "session"), layout="grid")
    try:
        async with app.run_test(size=(170, 48)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "hung", what="hung")
            await wait_for(lambda: "Worker_TP1" in text_of(app, ".stuck-banner"), what="the banner")
            banner = text_of(app, ".stuck-banner")
            assert banner.index("Worker_TP1") < banner.index("TP0, TP2, TP3")
            assert "load_weights" in banner
            await wait_for(lambda: "Where it is stuck" in text_of(app, ".stacks"), what="the stacks panel's head")
            assert text_of(app, ".stacks").lstrip().startswith("Where it is stuck")
            await pilot.pause(0.5)  # one layout pass after the banner was shown
            assert app.query_one(".stuck-banner").region.height > 0  # on screen, not only filled in
            if os.environ.get("WORKBENCH_SNAPSHOT"):  # a picture to look at
                app.save_screenshot(os.environ["WORKBENCH_SNAPSHOT"])
            await pilot.press("q")
    finally:
        app.engine.shutdown()
