"""The metrics panel: an SVG snapshot with known numbers, and a live run on the simulator
(the header's summary, a load burst into the notes and the session)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.ui.test_snapshots import SIZE, make, pinned_clock, settle  # noqa: F401 - a fixture
from workbench.core.engine.settings import Settings
from workbench.core.record.session import read_events
from workbench.ui.app import make_app


def derived(i: int) -> dict:
    """A made-up minute of serving: load ramps up, then the KV cache fills and TTFT grows."""
    ramp = min(i, 20) / 20
    total = {"running": round(16 * ramp), "waiting": max(0, i - 24) // 2, "kv_usage": min(0.95, 0.04 * i),
             "generation_tps": 900 * ramp + (i % 3) * 20, "prompt_tps": 2400 * ramp,
             "ttft": {"p50": 0.05 + 0.004 * i, "p99": 0.12 + 0.01 * i, "count": 10 * i, "over": "window"}}
    return {"source": "metrics", "window_s": 30.0, "engines": {"0": total}, "all": total, "missing": []}


def test_metrics_panel_snapshot(snap_compare, tmp_path, pinned_clock, no_leaks) -> None:  # noqa: F811
    app = make(tmp_path, "v0.11-healthy.log", "perf")

    async def with_numbers(pilot) -> None:
        await settle(pilot)
        run_id = pilot.app.runs[0]
        pilot.app.metric_history[run_id] = [derived(i) for i in range(40)]
        pilot.app.metric_source[run_id] = "/metrics"
        pilot.app.show_metrics()
        await pilot.pause(0.2)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=with_numbers)
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_live_metrics_header_and_a_load_burst(tmp_path, no_leaks) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port), "--time-scale", "0.02"]
    app = make_app(argv, settings=Settings(), session_dir=str(tmp_path / "s"), layout="perf")
    try:
        async with app.run_test(size=SIZE) as pilot:
            async def until(condition, what: str) -> None:
                for _ in range(1200):
                    if condition():
                        return
                    await pilot.pause(0.05)
                raise AssertionError(f"timed out waiting for {what}")

            await until(lambda: app.runs and app.engine.runs[app.runs[0]].verdict == "healthy", "healthy")
            run = app.engine.runs[app.runs[0]]
            await until(lambda: len(app.metric_history.get(run.id, [])) >= 2, "two scrapes")
            await pilot.press("b")
            await until(lambda: any(f"load on {run.id}:" in m for m in app.messages), "the load result in the notes")
            note = next(m for m in app.messages if f"load on {run.id}:" in m)
            assert "32 ok, 0 failed" in note and "output tok/s" in note and "TTFT p50" in note
            await until(lambda: "gen " in app.metrics_summary(run.id) and app.metric_history[run.id][-1]["all"]
                        .get("ttft"), "the summary after the burst")
            header = str(app.pane.query_one(".pane-header").render())
            assert "serving" in header and "tok/s" in header and "TTFT p50" in header
            panel_text = str(app.pane.query_one("#cap-ttft_p50").render())
            assert "TTFT p50: " in panel_text and "ms" in panel_text
    finally:
        app.engine.shutdown()
    session = Path(tmp_path / "s")
    assert list((session / "runs" / run.id).glob("load-*.json"))
    report = json.loads(next((session / "runs" / run.id).glob("load-*.json")).read_text())
    assert report["completed"] == 32 and report["output_throughput"] > 0
    assert any(e.get("kind") == "notice" and "load on" in e.get("text", "") for e in read_events(session))


@pytest.mark.asyncio
async def test_the_tui_matrix_table_gains_throughput_columns_as_runs_end(tmp_path, no_leaks) -> None:
    from workbench.core.record.recipe import load_recipe

    path = tmp_path / "tp.toml"
    path.write_text('name = "tp"\ncommand = ["{python}", "-m", "workbench.sim", "healthy", "--port", "{port}", '
                    '"--time-scale", "0.02", "--max-num-seqs", "1"]\n'
                    "[load]\nconcurrency = 8\nrequests = 16\nprompt_tokens = 32\nmax_tokens = 8\n"
                    '[variants.more-seqs]\nset_args = { "--max-num-seqs" = "16" }\n')
    app = make_app([], settings=Settings(), session_dir=str(tmp_path / "s"), matrix=(load_recipe(path), None))
    try:
        async with app.run_test(size=SIZE) as pilot:
            def table() -> str:
                return str(app.query_one("#conclusion").render())

            first = None
            for _ in range(2400):
                if "conclusion:" in table():
                    break
                if first is None and "base" in table() and "running the next variant" in table():
                    first = table()  # the base's row, measured, before the variant ran
                await pilot.pause(0.05)
            assert first is not None and "out tok/s" in first and "more-seqs" not in first.split("\n", 1)[1]
            assert "conclusion: healthy in every variant; --max-num-seqs 16: " in table()
    finally:
        app.engine.shutdown()


@pytest.mark.asyncio
async def test_the_profiler_key_offers_the_relaunch_then_finds_the_trace(tmp_path, no_leaks, monkeypatch) -> None:
    from workbench.ui import metrics_panel
    from workbench.ui.screens import ConfirmScreen

    monkeypatch.setattr(metrics_panel, "PROFILER_SECONDS", 0.5)
    port = free_port()
    argv = [sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port), "--time-scale", "0.02"]
    app = make_app(argv, settings=Settings(smoke=False), session_dir=str(tmp_path / "s"), layout="perf")
    try:
        async with app.run_test(size=SIZE) as pilot:
            async def until(condition, what: str) -> None:
                for _ in range(1200):
                    if condition():
                        return
                    await pilot.pause(0.05)
                raise AssertionError(f"timed out waiting for {what}")

            def serving() -> bool:
                run = app.current_run()
                return run is not None and run.alive and bool(run.ready_url) and run.verdict == "healthy"

            await until(serving, "healthy")
            first = app.current_run().id
            await pilot.press("T")
            await until(lambda: isinstance(app.screen, ConfirmScreen), "the relaunch offer")
            # the simulator says version 0.11.0: the variable, not --profiler-config
            assert "VLLM_TORCH_PROFILER_DIR=" in app.screen.question
            await pilot.press("y")
            await until(lambda: app.current_run().id != first and serving(), "the relaunched run, healthy")
            assert "VLLM_TORCH_PROFILER_DIR" in app.current_run().spec.env_delta
            await pilot.press("T")
            await until(lambda: any("trace at " in m for m in app.messages), "the trace's path in the notes")
            assert any("vLLM is writing the trace" in m for m in app.messages)
            trace = Path(next(m for m in app.messages if "trace at " in m).split("trace at ", 1)[1])
            assert trace.is_file() and trace.parent.name == "traces"
    finally:
        app.engine.shutdown()
