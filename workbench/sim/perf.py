"""The simulator's serving side: a continuous-batching scheduler, `/metrics`, streaming completions.

Written from vLLM's documented behaviour, not from the workbench's parser: one engine step
decodes one token for every running request and prefills up to `--max-num-batched-tokens`
prompt tokens (chunked prefill splits a long prompt over steps; without it a prompt is
prefilled whole); at most `--max-num-seqs` requests run at once; the KV cache has a fixed number
of token slots and a request that no longer fits is preempted (recomputed later); with
prefix caching (on by default, as in vLLM V1; off with `--no-enable-prefix-caching`) the full 16-token blocks of a prompt seen before are not recomputed.
A step costs a fixed overhead, a little per running sequence and per prefilled token, so
throughput grows with concurrency up to `--max-num-seqs` and TTFT falls with prefix hits.
Serving runs in real time (`--time-scale` shortens only startup).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

BLOCK = 16
STEP_OVERHEAD_S = 0.012  # scheduling, sampling, the forward pass's fixed cost
PER_SEQ_S = 0.0003  # one decode token of one sequence
PER_PREFILL_TOKEN_S = 0.00004
KV_TOKENS_AT_0_9 = 60_000  # KV cache slots at --gpu-memory-utilization 0.9
WORDS = ("Hello!", "I", "am", "a", "simulated", "model", "answering", "deterministically")
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)


def flag_value(extra: list[str], flag: str, default: str | None = None) -> str | None:
    for i, word in enumerate(extra):
        if word == flag and i + 1 < len(extra):
            return extra[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return default


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out = [f'{name}_bucket{{{labels},le="{bound}"}} {count}.0' for bound, count in zip(self.buckets, self.counts, strict=True)]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.total}.0')
        return out + [f"{name}_count{{{labels}}} {self.total}.0", f"{name}_sum{{{labels}}} {self.sum}"]


@dataclass
class Request:
    prompt: list[int]
    max_tokens: int
    arrived: float
    tokens: queue.Queue = field(default_factory=queue.Queue)  # a word per token, None at the end
    computed: int = 0  # prompt (and, after a preemption, output) tokens in the KV cache
    generated: int = 0
    first_token_at: float = 0.0
    last_token_at: float = 0.0
    cached: int = 0

    @property
    def context(self) -> int:
        return len(self.prompt) + self.generated

    @property
    def prefill_left(self) -> int:
        return self.context - self.computed  # 0 while decoding: each step's token is cached at once


class Scheduler:
    def __init__(self, args: Any, extra: list[str]) -> None:
        self.max_num_seqs = int(args.max_num_seqs)
        self.budget = int(flag_value(extra, "--max-num-batched-tokens", "8192") or 8192)
        self.chunked = "--no-enable-chunked-prefill" not in extra
        self.prefix_caching = "--no-enable-prefix-caching" not in extra
        self.capacity = int(KV_TOKENS_AT_0_9 * float(args.gpu_memory_utilization) / 0.9)
        self.model = args.model
        self.cond = threading.Condition()
        self.waiting: list[Request] = []
        self.running: list[Request] = []
        self.cached_blocks: set[int] = set()
        self.counters = {"prompt_tokens": 0, "generation_tokens": 0, "num_preemptions": 0,
                         "prefix_cache_queries": 0, "prefix_cache_hits": 0, "request_success": 0}
        self.ttft, self.itl = Histogram(TTFT_BUCKETS), Histogram(ITL_BUCKETS)
        self.tpot, self.e2e = Histogram(ITL_BUCKETS), Histogram(E2E_BUCKETS)
        self.interval_tokens = [0, 0]  # prompt, generation since the last stats line
        self.interval_started = time.monotonic()
        threading.Thread(target=self.loop, daemon=True, name="sim-scheduler").start()

    # -- requests ----------------------------------------------------------------------------

    def submit(self, prompt_text: str, max_tokens: int) -> Request:
        request = Request([hash(w) & 0xFFFF for w in prompt_text.split()] or [0], max(1, max_tokens), time.monotonic())
        with self.cond:
            self.waiting.append(request)
            self.cond.notify()
        return request

    def _block_hashes(self, prompt: list[int]) -> list[int]:
        hashes, prev = [], 0
        for start in range(0, len(prompt) - BLOCK + 1, BLOCK):
            prev = hash((prev, tuple(prompt[start:start + BLOCK])))
            hashes.append(prev)
        return hashes

    def _admit(self, request: Request) -> None:
        if self.prefix_caching and request.generated == 0:
            self.counters["prefix_cache_queries"] += len(request.prompt)
            hit = 0
            for h in self._block_hashes(request.prompt):
                if h not in self.cached_blocks:
                    break
                hit += BLOCK
            request.cached = request.computed = min(hit, len(request.prompt) - 1)  # the last token is recomputed
            self.counters["prefix_cache_hits"] += request.computed
        self.running.append(request)

    def _used(self) -> int:
        return sum(r.computed for r in self.running)

    # -- the engine loop ---------------------------------------------------------------------

    def loop(self) -> None:
        while True:
            with self.cond:
                while not self.running and not self.waiting:
                    self.cond.wait()
                while self.waiting and len(self.running) < self.max_num_seqs and (
                        not self.running or self._used() + self.waiting[0].context <= self.capacity):
                    self._admit(self.waiting.pop(0))
                budget, plan = self.budget, []
                decodes = [r for r in self.running if r.prefill_left == 0]
                budget -= len(decodes)
                for r in self.running:
                    left = r.prefill_left
                    if left and budget > 0 and (self.chunked or left <= budget or not plan):
                        take = min(left, budget) if self.chunked else left
                        plan.append((r, take))
                        budget -= take
                if not self.chunked and plan:
                    decodes = []  # a whole-prompt prefill runs in a step of its own
                prefilled = sum(take for _, take in plan)
            time.sleep(STEP_OVERHEAD_S + PER_SEQ_S * len(decodes) + PER_PREFILL_TOKEN_S * prefilled)
            self._finish_step(decodes, plan)

    def _finish_step(self, decodes: list[Request], plan: list[tuple[Request, int]]) -> None:
        now = time.monotonic()
        with self.cond:
            emitted = list(decodes)
            for r, take in plan:
                r.computed += take
                if r.generated == 0:
                    self.counters["prompt_tokens"] += take
                    self.interval_tokens[0] += take
                if r.prefill_left == 0:
                    emitted.append(r)
                    if self.prefix_caching:
                        self.cached_blocks.update(self._block_hashes(r.prompt))
            for r in emitted:
                if r not in self.running:
                    continue
                if r.generated == 0:
                    r.first_token_at = now
                    self.ttft.observe(now - r.arrived)
                else:
                    self.itl.observe(now - r.last_token_at)
                r.last_token_at = now
                r.generated += 1
                r.computed = r.context
                self.counters["generation_tokens"] += 1
                self.interval_tokens[1] += 1
                r.tokens.put(WORDS[(r.generated - 1) % len(WORDS)])
                if r.generated >= r.max_tokens:
                    self.running.remove(r)
                    self.counters["request_success"] += 1
                    self.e2e.observe(now - r.arrived)
                    if r.generated > 1:
                        self.tpot.observe((now - r.first_token_at) / (r.generated - 1))
                    r.tokens.put(None)
            while self._used() > self.capacity and len(self.running) > 1:
                victim = self.running.pop()  # the newest request gives its KV back and waits again
                victim.computed = 0
                self.waiting.insert(0, victim)
                self.counters["num_preemptions"] += 1

    # -- what the server exposes -------------------------------------------------------------

    def kv_usage(self) -> float:
        return min(1.0, self._used() / self.capacity) if self.capacity else 0.0

    def metrics_text(self, engine_bound: int = 0) -> str:
        # engine_bound: requests the API has handed to the engine process and not yet seen back
        labels = f'engine="0",model_name="{self.model}"'
        with self.cond:
            out = []
            for name, kind, value in (("num_requests_running", "gauge", len(self.running) + engine_bound),
                                      ("num_requests_waiting", "gauge", len(self.waiting)),
                                      ("kv_cache_usage_perc", "gauge", self.kv_usage())):
                out += [f"# HELP vllm:{name} {name}.", f"# TYPE vllm:{name} {kind}", f"vllm:{name}{{{labels}}} {float(value)}"]
            for name, value in self.counters.items():
                extra = ',finished_reason="length"' if name == "request_success" else ""
                out += [f"# HELP vllm:{name} {name}.", f"# TYPE vllm:{name} counter",
                        f"vllm:{name}_total{{{labels}{extra}}} {float(value)}"]
            for name, hist in (("time_to_first_token_seconds", self.ttft), ("inter_token_latency_seconds", self.itl),
                               ("request_time_per_output_token_seconds", self.tpot),
                               ("e2e_request_latency_seconds", self.e2e)):
                out += [f"# HELP vllm:{name} {name}.", f"# TYPE vllm:{name} histogram", *hist.lines(f"vllm:{name}", labels)]
        return "\n".join(out) + "\n"

    def stats_line(self) -> str:
        """The periodic line of vLLM's LoggingStatLogger, with this interval's numbers."""
        with self.cond:
            now = time.monotonic()
            span = max(now - self.interval_started, 1e-6)
            prompt, gen = (t / span for t in self.interval_tokens)
            self.interval_tokens, self.interval_started = [0, 0], now
            queries, hits = self.counters["prefix_cache_queries"], self.counters["prefix_cache_hits"]
            line = (f"Engine 000: Avg prompt throughput: {prompt:.1f} tokens/s, Avg generation throughput: {gen:.1f} tokens/s, "
                    f"Running: {len(self.running)} reqs, Waiting: {len(self.waiting)} reqs, ")
            if self.counters["num_preemptions"]:
                line += f"Preemptions: {self.counters['num_preemptions']}, "
            return line + (f"GPU KV cache usage: {self.kv_usage() * 100:.1f}%, "
                           f"Prefix cache hit rate: {(hits / queries * 100) if queries else 0.0:.1f}%")


def prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return " ".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
    prompt = body.get("prompt", "")
    return " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def serve_completion(handler: Any, scheduler: Scheduler, body: dict[str, Any], chat: bool, log_line: Any) -> None:
    """Answer one completion through the scheduler: a JSON reply, or SSE chunks like vLLM's
    OpenAI server (`data: {...}` per token, a usage chunk when asked, `data: [DONE]`)."""
    prompt = prompt_of(body)
    request = scheduler.submit(prompt, int(body.get("max_tokens") or 16))
    usage_of = lambda n: {"prompt_tokens": len(request.prompt), "completion_tokens": n,  # noqa: E731
                          "total_tokens": len(request.prompt) + n}
    kind = "chat.completion" if chat else "text_completion"
    if not body.get("stream"):
        words = []
        while (word := request.tokens.get()) is not None:
            words.append(word)
        text = " ".join(words)
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"} if chat
                  else {"index": 0, "text": text, "finish_reason": "length"})
        reply = json.dumps({"id": "cmpl-sim", "object": kind, "model": scheduler.model, "choices": [choice],
                            "usage": usage_of(len(words))}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)
        log_line(200)
        return
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    chunk_kind = kind + ".chunk" if chat else kind
    n = 0
    try:
        while (word := request.tokens.get()) is not None:
            text = (" " if n else "") + word
            n += 1
            delta = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
            handler.wfile.write(b"data: " + json.dumps({"id": "cmpl-sim", "object": chunk_kind, "model": scheduler.model,
                                                         "choices": [delta]}).encode() + b"\n\n")
            handler.wfile.flush()
        if (body.get("stream_options") or {}).get("include_usage"):
            handler.wfile.write(b"data: " + json.dumps({"id": "cmpl-sim", "object": chunk_kind, "choices": [],
                                                         "usage": usage_of(n)}).encode() + b"\n\n")
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()
    except OSError:
        pass  # the client went away; the request still runs to its end, as in vLLM without abort
    log_line(200)


def profiler_dir(extra: list[str]) -> str | None:
    """Where traces go: VLLM_TORCH_PROFILER_DIR (older) or --profiler-config's torch_profiler_dir."""
    config = flag_value(extra, "--profiler-config")
    if config:
        try:
            return str(json.loads(config).get("torch_profiler_dir") or "") or None
        except ValueError:
            return None
    return os.environ.get("VLLM_TORCH_PROFILER_DIR") or None


def write_trace(directory: str, seconds: float) -> None:
    """vLLM writes the trace before /stop_profile returns; here a small JSON, after a while."""
    time.sleep(seconds)
    os.makedirs(directory, exist_ok=True)
    name = os.path.join(directory, f"sim-{os.getpid()}-{int(time.time())}.pt.trace.json")
    with open(name + ".tmp", "w") as out:
        json.dump({"traceEvents": [{"name": "execute_model", "ph": "X", "ts": 0, "dur": 1000}]}, out)
    os.replace(name + ".tmp", name)
