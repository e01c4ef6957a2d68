"""The keys beside the run: the issue search copied via OSC 52, and the debugpy relaunch toggle."""

from __future__ import annotations

import pytest

from tests.ui.test_app import running, sim, wait_for
from workbench.ui.screens import TextScreen

pytest.importorskip("debugpy")


@pytest.mark.asyncio
async def test_issue_search_key_copies_the_phrase_and_links(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("kv-cache-too-small"), "failed") as (app, pilot):
        await pilot.press("I")
        await wait_for(lambda: isinstance(app.screen, TextScreen), what="the search page")
        assert app.clipboard.startswith("ValueError: ")
        assert "https://github.com/vllm-project/vllm/issues?q=is%3Aissue+ValueError" in app.clipboard
        assert not any(c.isdigit() for c in app.clipboard.splitlines()[0])


@pytest.mark.asyncio
async def test_debugpy_key_relaunches_under_debugpy_and_back(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy")) as (app, pilot):
        first = app.current_run()
        await pilot.press("B")
        await wait_for(lambda: isinstance(app.screen, TextScreen), timeout=60, what="the debugpy page")
        debugged = app.current_run()
        assert debugged.id != first.id and "debugpy" in debugged.spec.argv and not first.alive
        assert debugged.spec.env_delta.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
        port = debugged.spec.argv[debugged.spec.argv.index("--listen") + 1].split(":")[1]
        page = str(app.screen.markup)
        assert f"ssh -L {port}:127.0.0.1:{port} " in page and f'"port": {port}' in page
        app.screen.dismiss()
        await pilot.press("B")
        await wait_for(lambda: app.current_run().id not in (first.id, debugged.id), timeout=30, what="plain rerun")
        plain = app.current_run()
        assert plain.spec.argv == first.spec.argv and "VLLM_ENABLE_V1_MULTIPROCESSING" not in plain.spec.env_delta
