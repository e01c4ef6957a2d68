"""The simulator on its own: real processes, real HTTP, vLLM's process names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from tests.helpers import free_port, wait_until, workbench


def start(scenario: str, port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.sim", scenario, "--port", str(port), "--time-scale", "0.05", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def wait_ready(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the simulator never became ready")


def test_list_and_unknown_scenario() -> None:
    listed = workbench("sim", "--list")
    assert listed.returncode == 0 and "oom-graph-capture" in listed.stdout and "hang" in listed.stdout
    bad = workbench("sim", "no-such-scenario")
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr and "Traceback" not in bad.stderr


def test_serves_openai_endpoints_with_an_engine_core_child_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = start("healthy", port)
    try:
        wait_ready(port)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert "VLLM::EngineCor" in [c.name() for c in children]
        chat = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                          json={"model": "Qwen/Qwen2.5-0.5B-Instruct", "messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 4}, timeout=5)
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        # the engine core notices its parent is gone
        wait_until(lambda: not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE],
                   what="the engine core to follow its parent")
        out = proc.stdout.read().decode()
        assert "Application shutdown complete." in out
        assert "\x1b[0;36m(APIServer pid=" in out  # 0.11 prefixes are cyan
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_port_in_use_really_fails_with_errno_98() -> None:
    port = free_port()
    proc = start("port-in-use", port)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert b"OSError: [Errno 98] Address already in use" in out


def test_false_ready_dies_on_the_first_generation() -> None:
    port = free_port()
    proc = start("false-ready", port)
    try:
        wait_ready(port)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "x", "max_tokens": 2}, timeout=10)
        assert answer.status_code == 500
        out, _ = proc.communicate(timeout=20)
        assert b"an illegal memory access was encountered" in out and b"EngineDeadError" in out
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_log_flood_reaches_its_line_count() -> None:
    port = free_port()
    proc = start("log-flood", port, "--rate", "0", "--lines", "20000")
    try:
        wait_ready(port)
        deadline = time.monotonic() + 20
        seen = b""
        while seen.count(b"EngineCore loop:") < 20000 and time.monotonic() < deadline:
            seen += proc.stdout.read1(1 << 20)
        assert seen.count(b"EngineCore loop:") == 20000
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
