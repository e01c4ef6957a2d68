"""Bounded load on a live server: streaming completions at a fixed concurrency, measured per request.

Every request streams (SSE), so the time to the first token and the gaps between tokens are
measured where the client sees them; the report has the numbers and names of `vllm bench serve`
(successful/failed, request and output-token throughput, TTFT/TPOT/ITL mean, median, p99).
It always stops by itself: after `requests` requests, or once `duration` has passed (the
requests in flight then finish).
"""

from __future__ import annotations

import asyncio
import json
import random
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from workbench.core.probes.metrics import MetricsError, scrape

# a plain vocabulary: words most tokenizers keep whole, so P words are about P tokens
_VOCAB = ("the", "model", "server", "token", "cache", "batch", "queue", "prompt", "answer", "river", "stone",
          "light", "green", "quick", "paper", "north", "water", "table", "night", "music", "field", "house")


@dataclass
class LoadSpec:
    concurrency: int = 4
    requests: int | None = 20
    duration: float | None = None
    prompt_tokens: int = 128
    max_tokens: int = 64
    prefix_tokens: int = 0  # a prefix shared by every prompt (what prefix caching can reuse)
    seed: int = 0
    endpoint: str = "/v1/completions"
    timeout: float = 300.0

    def check(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if (self.requests is None) == (self.duration is None):
            raise ValueError("give requests or duration (one of them)")
        if (self.requests is not None and self.requests < 1) or (self.duration is not None and self.duration <= 0):
            raise ValueError("requests and duration must be positive")
        if self.prompt_tokens < 1 or self.max_tokens < 1 or not 0 <= self.prefix_tokens <= self.prompt_tokens:
            raise ValueError("prompt-tokens and max-tokens must be positive, prefix-tokens at most prompt-tokens")


@dataclass
class RequestOutcome:
    ok: bool
    ttft: float = 0.0
    e2e: float = 0.0
    output_tokens: int = 0
    itls: list[float] = field(default_factory=list)
    error: str = ""


def prompts(spec: LoadSpec, count: int) -> list[str]:
    rng = random.Random(spec.seed)
    prefix = [rng.choice(_VOCAB) for _ in range(spec.prefix_tokens)]
    return [" ".join(prefix + [rng.choice(_VOCAB) for _ in range(spec.prompt_tokens - spec.prefix_tokens)])
            for _ in range(count)]


def model_of(url: str, timeout: float = 10.0) -> str:
    """The served model's id (the first of /v1/models)."""
    try:
        data = httpx.get(url.rstrip("/") + "/v1/models", timeout=timeout).json()
        return str(data["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise MetricsError(f"{url}/v1/models: no model ({type(exc).__name__})") from None


def check_target(url: str) -> str:
    """Refuse anything but a reachable vLLM server (its /metrics parses); the model id."""
    scrape(url)
    return model_of(url)


async def _one(client: httpx.AsyncClient, url: str, model: str, prompt: str, spec: LoadSpec) -> RequestOutcome:
    chat = spec.endpoint.endswith("/chat/completions")
    body: dict[str, Any] = {"model": model, "max_tokens": spec.max_tokens, "temperature": 0, "stream": True,
                            "ignore_eos": True, "stream_options": {"include_usage": True}}
    body.update({"messages": [{"role": "user", "content": prompt}]} if chat else {"prompt": prompt})
    started = time.perf_counter()
    last = started
    outcome = RequestOutcome(ok=False)
    chunks = 0
    try:
        async with client.stream("POST", url.rstrip("/") + spec.endpoint, json=body, timeout=spec.timeout) as reply:
            if reply.status_code != 200:
                outcome.error = f"HTTP {reply.status_code}: {(await reply.aread())[:200].decode(errors='replace')}"
                return outcome
            async for line in reply.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                payload = json.loads(data)
                if payload.get("usage") and payload["usage"].get("completion_tokens"):
                    outcome.output_tokens = int(payload["usage"]["completion_tokens"])
                choices = payload.get("choices") or []
                text = (choices[0].get("delta", {}).get("content") if chat else choices[0].get("text")) if choices else None
                if not text:
                    continue
                now = time.perf_counter()
                if chunks == 0:
                    outcome.ttft = now - started
                else:
                    outcome.itls.append(now - last)
                last = now
                chunks += 1
    except (httpx.HTTPError, ValueError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome
    outcome.e2e = time.perf_counter() - started
    outcome.output_tokens = outcome.output_tokens or chunks
    outcome.ok = chunks > 0
    if not outcome.ok:
        outcome.error = "no tokens in the stream"
    return outcome


async def _drive(url: str, model: str, spec: LoadSpec, progress: Callable[[int, int, float], None] | None,
                 cancelled: Callable[[], bool]) -> tuple[list[RequestOutcome], float]:
    total = spec.requests or 0
    texts = prompts(spec, total or 1000)
    outcomes: list[RequestOutcome] = []
    started = time.perf_counter()
    issued = 0
    limits = httpx.Limits(max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency)

    def more() -> bool:
        if cancelled():
            return False
        if spec.requests is not None:
            return issued < spec.requests
        return time.perf_counter() - started < (spec.duration or 0)

    async with httpx.AsyncClient(limits=limits, timeout=spec.timeout) as client:
        # one request first, not counted (as `vllm bench serve` does): a broken endpoint fails
        # fast, and the measured part does not pay for the first connection
        first = await _one(client, url, model, texts[0], spec)
        if not first.ok:
            return [first], time.perf_counter() - started
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal issued
            while more():
                prompt = texts[issued % len(texts)]
                issued += 1
                outcomes.append(await _one(client, url, model, prompt, spec))
                if progress:
                    progress(len(outcomes), total, time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return outcomes, time.perf_counter() - started


def _ms_stats(values: list[float], name: str) -> dict[str, float]:
    if not values:
        return {f"mean_{name}_ms": 0.0, f"median_{name}_ms": 0.0, f"p99_{name}_ms": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, max(0, int(round(0.99 * (len(ordered) - 1)))))]
    return {f"mean_{name}_ms": statistics.fmean(values) * 1000, f"median_{name}_ms": statistics.median(values) * 1000,
            f"p99_{name}_ms": p99 * 1000}


def report_of(outcomes: list[RequestOutcome], seconds: float, spec: LoadSpec) -> dict[str, Any]:
    good = [o for o in outcomes if o.ok]
    output = sum(o.output_tokens for o in good)
    tpots = [(o.e2e - o.ttft) / (o.output_tokens - 1) for o in good if o.output_tokens > 1]
    report: dict[str, Any] = {
        "completed": len(good), "failed": len(outcomes) - len(good), "duration_s": seconds,
        "total_output_tokens": output, "total_input_tokens": spec.prompt_tokens * len(good),
        "request_throughput": len(good) / seconds if seconds > 0 else 0.0,
        "output_throughput": output / seconds if seconds > 0 else 0.0,
        "total_token_throughput": (output + spec.prompt_tokens * len(good)) / seconds if seconds > 0 else 0.0,
        "max_concurrency": spec.concurrency,
        **_ms_stats([o.ttft for o in good], "ttft"), **_ms_stats(tpots, "tpot"),
        **_ms_stats([gap for o in good for gap in o.itls], "itl"), **_ms_stats([o.e2e for o in good], "e2el"),
        "errors": sorted({o.error for o in outcomes if not o.ok})[:5], "spec": asdict(spec), "tool": "workbench load",
    }
    return report


def run_load(url: str, spec: LoadSpec, progress: Callable[[int, int, float], None] | None = None,
             model: str | None = None, cancelled: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Put the load on the server; refuses (MetricsError) a URL that is not a live vLLM server."""
    spec.check()
    model = model or check_target(url)
    outcomes, seconds = asyncio.run(_drive(url, model, spec, progress, cancelled))
    return {"url": url, "model": model, **report_of(outcomes, seconds, spec)}


def report_text(report: dict[str, Any]) -> str:
    """The report in the shape `vllm bench serve` prints."""
    rows = [("Successful requests:", f"{report['completed']}"), ("Failed requests:", f"{report['failed']}"),
            ("Maximum request concurrency:", f"{report.get('max_concurrency', '-')}"),
            ("Benchmark duration (s):", f"{report['duration_s']:.2f}"),
            ("Total generated tokens:", f"{report['total_output_tokens']}"),
            ("Request throughput (req/s):", f"{report['request_throughput']:.2f}"),
            ("Output token throughput (tok/s):", f"{report['output_throughput']:.2f}")]
    for title, key in (("Time to First Token", "ttft"), ("Time per Output Token (excl. 1st token)", "tpot"),
                       ("Inter-token Latency", "itl")):
        rows.append((f"---{title}---", ""))
        rows += [(f"{label} {key.upper()} (ms):", f"{report.get(f'{stat}_{key}_ms', 0.0):.2f}")
                 for label, stat in (("Mean", "mean"), ("Median", "median"), ("P99", "p99"))]
    lines = [f"{a:<40}{b:>12}" if b else a for a, b in rows]
    for error in report.get("errors", []):
        lines.append(f"error: {error}")
    return "\n".join(lines) + "\n"


def progress_bar(done: int, total: int, seconds: float, duration: float | None) -> str:
    fraction = done / total if total else min(1.0, seconds / (duration or 1))
    filled = int(fraction * 30)
    count = f"{done}/{total} requests" if total else f"{done} requests"
    return f"\r[{'#' * filled}{' ' * (30 - filled)}] {count}  {seconds:.1f}s"


# -- `vllm bench serve`, where the target environment has it -----------------------------------


def run_vllm_bench(url: str, spec: LoadSpec, vllm: str = "vllm", timeout: float = 3600.0) -> dict[str, Any]:
    """Run `vllm bench serve` with the same load and read its saved JSON result. `vllm` is the
    command (words split like a shell's), e.g. "vllm" or "/venv/bin/python -m vllm.entrypoints.cli.main"."""
    words = shlex.split(vllm)
    binary = shutil.which(words[0]) if words else None
    if binary is None:
        raise MetricsError(f"{vllm}: not found (--with-vllm-bench needs the vLLM environment's `vllm` on PATH or --vllm)")
    model = check_target(url)
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as out:
        argv = [binary, *words[1:], "bench", "serve", "--backend", "vllm", "--base-url", url.rstrip("/"), "--model", model,
                "--endpoint", spec.endpoint, "--dataset-name", "random", "--random-input-len", str(spec.prompt_tokens),
                "--random-output-len", str(spec.max_tokens), "--num-prompts", str(spec.requests or 100),
                "--max-concurrency", str(spec.concurrency), "--seed", str(spec.seed), "--ignore-eos",
                "--save-result", "--result-dir", out, "--result-filename", "result.json"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        result = Path(out) / "result.json"
        if done.returncode != 0 or not result.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise MetricsError(f"vllm bench serve exited {done.returncode}: {tail[0][:200]}")
        data = json.loads(result.read_text())
    keys = ("completed", "failed", "duration", "total_output_tokens", "request_throughput", "output_throughput",
            "total_token_throughput", "max_concurrency", *(f"{s}_{k}_ms" for k in ("ttft", "tpot", "itl", "e2el")
                                                          for s in ("mean", "median", "p99")))
    report = {k: data[k] for k in keys if k in data}
    report["duration_s"] = report.pop("duration", 0.0)
    report.setdefault("failed", max(0, int(spec.requests or 0) - int(report.get("completed", 0))))
    return {"url": url, "model": model, **report, "errors": [], "spec": asdict(spec), "tool": "vllm bench serve"}
