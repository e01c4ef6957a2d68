"""Pilot: the verdict flips on screen when the engine core dies or freezes while serving, and a
stopped process is resumed only by its key."""

from __future__ import annotations

import signal

import psutil
import pytest

from tests.ui.test_app import running, sim, text_of, wait_for


def engine_core(app) -> psutil.Process:
    run = app.current_run()
    kids = psutil.Process(run.pid).children(recursive=True)
    return next(p for p in kids if "workbench.sim.engine_core" in " ".join(p.cmdline()))


@pytest.mark.asyncio
async def test_engine_death_while_serving_flips_the_verdict_on_screen(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        assert "verdict healthy" in text_of(app, ".pane-header")
        engine = engine_core(app)
        engine.send_signal(signal.SIGKILL)
        await wait_for(lambda: "FAILED (was healthy)" in text_of(app, ".pane-header"), what="the header to flip")
        pinned = text_of(app, ".pinned")
        assert "FAILED while serving:" in pinned and f"(PID {engine.pid}) killed by SIGKILL" in pinned
        assert "killed by SIGKILL" in text_of(app, "#status")


@pytest.mark.asyncio
async def test_a_frozen_engine_core_flips_to_hung_and_only_its_key_resumes_it(tmp_path, no_leaks) -> None:
    async with running(tmp_path, sim("healthy"), "healthy") as (app, pilot):
        engine = engine_core(app)
        engine.send_signal(signal.SIGSTOP)
        await wait_for(lambda: "HUNG (was healthy)" in text_of(app, ".pane-header"), what="the header to flip")
        assert "is stopped (state T)" in text_of(app, ".pinned")
        assert engine.status() == psutil.STATUS_STOPPED  # the automatic dump left it as it found it
        await pilot.press("C")
        await wait_for(lambda: engine.status() != psutil.STATUS_STOPPED, what="the resume key")
        await wait_for(lambda: f"resumed PID {engine.pid}" in text_of(app, "#status"), what="the note")
