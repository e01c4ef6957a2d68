"""The simulator's serving behaviour, written from what vLLM does after it is ready:

- the API server watches its engine-core child (vLLM's MPClientEngineMonitor): when it exits,
  the server logs that, answers completions with 500 and /health with 503, and — unless
  VLLM_KEEP_ALIVE_ON_ENGINE_DEATH=1 — its watchdog shuts the API down a few seconds later;
- completions need the engine child to answer, so a SIGSTOPped child freezes them while
  /health and /v1/models keep answering 200;
- requests that are the client's fault are refused as vLLM does: a prompt over the context
  length (400) and a model name the server does not serve (404);
- /metrics carries the request gauges (vllm:num_requests_running / _waiting).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

from workbench.sim.logfmt import Logger, traceback_lines

WATCHDOG_SECONDS = 5.0  # vLLM's VLLM_WATCHDOG_TIME_S


class RequestGauges:
    """Requests the API has handed to the engine and not yet answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.tokens = 0  # generation tokens produced so far

    def produced(self, tokens: int) -> None:
        with self._lock:
            self.tokens += tokens

    def enter(self) -> None:
        with self._lock:
            self.running += 1

    def leave(self) -> None:
        with self._lock:
            self.running = max(0, self.running - 1)

    def metrics_text(self, model: str) -> str:
        labels = f'engine="0",model_name="{model}"'
        with self._lock:
            running, waiting, tokens = self.running, self.waiting, self.tokens
        return (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{labels}}} {float(running)}\n"
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{labels}}} {float(waiting)}\n"
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n"
            "# TYPE vllm:generation_tokens_total counter\n"
            f"vllm:generation_tokens_total{{{labels}}} {float(tokens)}\n"
        )


def keep_alive_on_engine_death() -> bool:
    return os.environ.get("VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0") not in ("", "0")


def log_engine_death(log: Logger, log_format: str) -> None:
    """What the API server prints when its engine core process is gone."""
    if log_format == "0.11":
        log.error("v1/engine/core_client.py", 744, "Engine core proc EngineCore_DP0 died unexpectedly, shutting down client.")
    else:
        log.warning("v1/engine/core_client.py", 818, "[shutdown] MPClient: engine core exited unexpectedly; starting cleanup")


def log_request_failed(log: Logger) -> None:
    """A request that was in flight (or arrives) after the engine died."""
    frames = [
        ("entrypoints/openai/serving_chat.py", 1152, "chat_completion_full_generator", "async for res in result_generator:"),
        ("v1/engine/async_llm.py", 439, "generate", "out = q.get_nowait() or await q.get()"),
    ]
    log.error(
        "entrypoints/openai/serving_chat.py", 1158,
        "Error in chat completion stream generator.\n" + traceback_lines(
            frames,
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
        ),
    )


def monitor_engine(engine: subprocess.Popen, stopping: Callable[[], bool], on_death: Callable[[], None]) -> threading.Thread:
    """Wait for the engine child to exit; an exit we did not ask for is a death."""

    def watch() -> None:
        engine.wait()
        if not stopping():
            on_death()

    thread = threading.Thread(target=watch, name="MPClientEngineMonitor", daemon=True)
    thread.start()
    return thread


def start_watchdog(is_dead: Callable[[], bool], shut_down: Callable[[], None], scale: float) -> None:
    """vLLM's watchdog_loop: every few seconds, an errored engine ends the API (unless kept alive)."""

    def loop() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS * scale)
            if is_dead() and not keep_alive_on_engine_death():
                shut_down()
                return

    threading.Thread(target=loop, name="watchdog", daemon=True).start()


def prompt_tokens(body: dict) -> int:
    """A word is a token here: enough to refuse an over-long prompt as vLLM does."""
    if "messages" in body:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
    else:
        text = str(body.get("prompt", ""))
    return len(text.split()) + 4  # the chat template's own tokens


def client_error(body: dict, served_model: str, max_model_len: int) -> tuple[int, dict, str, str] | None:
    """(status, payload, reason, message) for a request vLLM refuses as the client's fault."""
    model = body.get("model")
    if model is not None and model != served_model:
        message = f"The model `{model}` does not exist."
        return 404, _error(message, "NotFoundError", 404, "model"), "Not Found", message
    tokens = prompt_tokens(body)
    if tokens > max_model_len:
        message = (
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt contains "
            f"{tokens} input tokens, which exceeds this limit even without any output tokens. "
            "Please reduce the length of the input prompt."
        )
        return 400, _error(message, "BadRequestError", 400, "input_tokens"), "Bad Request", message
    return None


def _error(message: str, kind: str, code: int, param: str | None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
