"""Pilot tests: keys pressed, engine commands issued, what is on screen — on the simulator."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.helpers import free_port
from workbench.core.settings import Settings
from workbench.ui.app import make_app

SIM = [sys.executable, "-m", "workbench.sim"]


async def wait_for(predicate, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


def text_of(app, selector: str) -> str:
    return str(app.query_one(selector).render())


def make(tmp_path, scenario: str, *extra: str):
    command = [*SIM, scenario, "--port", str(free_port()), "--time-scale", "0.1", *extra]
    return make_app(command, settings=Settings(stall_window=30), session_dir=str(tmp_path / "session"))


@pytest.mark.asyncio
async def test_healthy_run_shows_phases_verdict_and_dump(tmp_path, no_leaks) -> None:
    app = make(tmp_path, "healthy")
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "healthy")
            await pilot.pause(1.1)
            assert "verdict healthy" in text_of(app, "#header")
            assert "ready" in text_of(app, "#phases")
            assert app.query_one("#log").line_count > 30
            await pilot.press("d")
            await wait_for(lambda: "stacks dumped" in text_of(app, "#messages"))
            assert app.engine.dumps[app.current].__len__() == 1
            await pilot.press("q")
            await wait_for(lambda: app.engine.closed)
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_eager_key_reruns_with_the_flag_toggled(tmp_path, no_leaks) -> None:
    app = make(tmp_path, "oom-graph-capture")
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "failed")
            await pilot.press("e")
            await wait_for(lambda: len(app.runs) == 2)
            second = app.engine.runs[app.runs[1]]
            assert "--enforce-eager" in second.spec.argv
            await wait_for(lambda: second.verdict == "healthy")
            await pilot.pause(1.1)
            assert "r1: failed" in text_of(app, "#findings") and "r2: healthy eager" in text_of(app, "#findings")
            assert "fails only in graph mode" in text_of(app, "#findings")
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_apply_key_relaunches_with_the_machine_applicable_fix(tmp_path, no_leaks) -> None:
    app = make(tmp_path, "kv-cache-too-small")
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "failed")
            await pilot.pause(1.1)
            assert "KV cache too small" in text_of(app, "#findings")
            await pilot.press("a")
            await wait_for(lambda: len(app.runs) == 2)
            second = app.engine.runs[app.runs[1]]
            assert second.spec.argv[-2:] == ["--max-model-len", "8192"]
            await wait_for(lambda: second.verdict == "healthy")
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_debug_toggle_applies_on_relaunch(tmp_path, no_leaks) -> None:
    app = make(tmp_path, "healthy")
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_for(lambda: app.current_run() is not None and app.current_run().verdict == "healthy")
            await pilot.press("D")
            assert "VLLM_LOGGING_LEVEL=DEBUG" in text_of(app, "#debug")
            await pilot.press("r")
            await wait_for(lambda: len(app.runs) == 2)
            second = app.engine.runs[app.runs[1]]
            assert second.spec.env_delta == {"VLLM_LOGGING_LEVEL": "DEBUG"}
            await wait_for(lambda: any("DEBUG" in line for line in second.store.lines(0, len(second.store))))
    finally:
        app.engine.shutdown()
