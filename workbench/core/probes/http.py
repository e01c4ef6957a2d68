"""Readiness and smoke requests over real HTTP.

"Ready" in the log is not "healthy": a server can answer `GET /v1/models` and die on the first
real request, so the smoke request is a deterministic generation (temperature 0, few tokens).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: httpx costs ~80 ms of start-up before the first frame
    import httpx

from workbench.core.cmdline import probe_host
from workbench.core.logs.text import sanitize

SMOKE_PROMPT = "Say hello."


@dataclass
class SmokeOutcome:
    ok: bool
    status: int | None
    latency: float | None
    endpoint: str
    output: str
    error: str = ""

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "status": self.status,
            "latency": None if self.latency is None else round(self.latency, 3),
            "endpoint": self.endpoint, "output": self.output, "error": self.error,
        }


def base_url(host: str, port: int) -> str:
    target = probe_host(host)
    if ":" in target:
        target = f"[{target}]"
    return f"http://{target}:{port}"


def probe_ready(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """(ready, model id or the reason it is not ready) from GET /v1/models."""
    import httpx

    try:
        response = httpx.get(f"{url}/v1/models", timeout=timeout)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    if response.status_code != 200:
        return False, f"HTTP {response.status_code}"
    try:
        models = response.json().get("data") or []
        # the id is shown on screen: the server must not drive the user's terminal with it
        return True, sanitize(str(models[0]["id"]).replace("\n", " ")) if models else ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return True, ""


def probe_health(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _chat(client: httpx.Client, url: str, model: str, max_tokens: int) -> httpx.Response:
    return client.post(
        f"{url}/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": SMOKE_PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
    )


def _completion(client: httpx.Client, url: str, model: str, max_tokens: int) -> httpx.Response:
    return client.post(
        f"{url}/v1/completions",
        json={"model": model, "prompt": "Hello, my name is", "max_tokens": max_tokens, "temperature": 0},
    )


def _text_of(payload: dict) -> str:
    try:
        choice = payload["choices"][0]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(choice.get("message"), dict):
        return str(choice["message"].get("content") or "")
    return str(choice.get("text") or "")


def smoke(url: str, model: str = "", max_tokens: int = 8, timeout: float = 120.0) -> SmokeOutcome:
    """One chat request (a completion if the model has no chat template)."""
    import httpx

    if not model:
        ok, found = probe_ready(url)
        model = found if ok else ""
    endpoint = "/v1/chat/completions"
    started = time.monotonic()
    try:
        with httpx.Client(timeout=timeout) as client:
            response = _chat(client, url, model, max_tokens)
            if response.status_code in (400, 404) and "template" in response.text.lower() or response.status_code == 404:
                endpoint = "/v1/completions"
                started = time.monotonic()
                response = _completion(client, url, model, max_tokens)
    except httpx.HTTPError as exc:
        return SmokeOutcome(False, None, time.monotonic() - started, endpoint, "", f"{type(exc).__name__}: {exc}")
    latency = time.monotonic() - started
    if response.status_code != 200:
        return SmokeOutcome(False, response.status_code, latency, endpoint, "", sanitize(response.text[:500]))
    try:
        text = _text_of(response.json())
    except ValueError:
        return SmokeOutcome(False, 200, latency, endpoint, "", "the answer is not JSON")
    if not text.strip():
        return SmokeOutcome(False, 200, latency, endpoint, text, "empty output")
    return SmokeOutcome(True, 200, latency, endpoint, sanitize(text[:200]))
