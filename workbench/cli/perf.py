"""`workbench metrics`, `load` and `profile-server`: a live server's numbers, load on it, its profiler."""

from __future__ import annotations

import argparse
import json
import sys
import time

from workbench.core.knowledge import verdicts as V


def add_perf_commands(sub: argparse._SubParsersAction) -> None:
    metrics = sub.add_parser("metrics", help="a live server's /metrics: running, waiting, KV usage, tokens/s, latency quantiles")
    metrics.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    metrics.add_argument("--once", action="store_true", help="one snapshot (two scrapes --interval apart), then exit")
    metrics.add_argument("--json", action="store_true")
    metrics.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between scrapes (default 2)")
    metrics.add_argument("--window", type=float, default=30.0, metavar="S", help="rates and quantiles over S seconds")
    metrics.add_argument("--pid", type=int, default=None, help="the server's PID: its tree's CPU for the bottleneck")

    load = sub.add_parser("load", help="bounded streaming load on a live server; a report like `vllm bench serve`")
    load.add_argument("url")
    load.add_argument("--concurrency", type=int, default=4)
    bound = load.add_mutually_exclusive_group()
    bound.add_argument("--requests", type=int, default=None, help="this many requests (default 20)")
    bound.add_argument("--duration", type=float, default=None, metavar="S", help="keep sending for S seconds")
    load.add_argument("--prompt-tokens", type=int, default=128)
    load.add_argument("--max-tokens", type=int, default=64)
    load.add_argument("--prefix-tokens", type=int, default=0, help="a prefix shared by every prompt")
    load.add_argument("--seed", type=int, default=0)
    load.add_argument("--chat", action="store_true", help="/v1/chat/completions instead of /v1/completions")
    load.add_argument("--json", action="store_true")
    load.add_argument("--with-vllm-bench", action="store_true", help="run `vllm bench serve` instead, read its JSON")
    load.add_argument("--vllm", default="vllm", help="with --with-vllm-bench: the vLLM environment's `vllm`")

    prof = sub.add_parser("profile-server", help="vLLM's torch profiler for S seconds: /start_profile, /stop_profile")
    prof.add_argument("url")
    prof.add_argument("--seconds", type=float, default=10.0)
    prof.add_argument("--trace-dir", default=None, help="where the server writes traces (to watch for the file)")
    prof.add_argument("--json", action="store_true")


def _fail(message: str) -> int:
    sys.stderr.write(f"workbench: {message}\n")
    return V.EXIT_USAGE


def _metrics_text(derived: dict) -> str:
    from workbench.core.probes.metrics import TOTAL, ms

    lines = []
    for engine, numbers in [(TOTAL, derived[TOTAL]), *(derived["engines"].items() if len(derived["engines"]) > 1 else [])]:
        head = "all engines" if engine == TOTAL else f"engine {engine}"
        parts = [f"{k} {numbers[k]:.0f}" for k in ("running", "waiting") if k in numbers]
        if "kv_usage" in numbers:
            parts.append(f"KV {numbers['kv_usage'] * 100:.1f}%")
        for key, label in (("prompt_tps", "prompt"), ("generation_tps", "gen")):
            if key in numbers:
                parts.append(f"{label} {numbers[key]:.1f} tok/s")
        if "preemptions_ps" in numbers:
            parts.append(f"preempt {numbers['preemptions_ps']:.2f}/s")
        if "prefix_hit_rate" in numbers:
            parts.append(f"prefix hit {numbers['prefix_hit_rate'] * 100:.1f}%")
        for key in ("ttft", "itl", "e2e"):
            if key in numbers:
                parts.append(f"{key.upper()} p50 {ms(numbers[key]['p50'])} p99 {ms(numbers[key]['p99'])}")
        lines.append(f"{head}: " + ", ".join(parts))
    if derived.get("missing"):
        lines.append("not exposed: " + ", ".join(derived["missing"]))
    return "\n".join(lines) + "\n"


def cmd_metrics(args: argparse.Namespace) -> int:
    import httpx

    from workbench.core.probes.bottleneck import devices, find_bottleneck, tree_cpu_of
    from workbench.core.probes.metrics import MetricsError, MetricsWindow, scrape

    window = MetricsWindow(args.window)
    client = httpx.Client()  # one for every scrape: a new client builds an SSL context each time
    try:
        window.add(scrape(args.url, client))
        while True:
            time.sleep(max(0.05, args.interval))
            window.add(scrape(args.url, client))
            derived = window.derived()
            assert derived is not None
            found = find_bottleneck(derived, devices()[0], tree_cpu_of(args.pid) if args.pid else None)
            if args.json:
                sys.stdout.write(json.dumps({"url": args.url, **derived, "bottleneck": found.to_dict()}) + "\n")
            else:
                sys.stdout.write(time.strftime("%H:%M:%S ") + _metrics_text(derived) + found.text() + "\n")
            sys.stdout.flush()
            if args.once:
                return 0
    except MetricsError as exc:
        return _fail(str(exc))
    finally:
        client.close()


def cmd_load(args: argparse.Namespace) -> int:
    from workbench.core.probes.load import (
        LoadSpec,
        progress_bar,
        report_text,
        run_load,
        run_vllm_bench,
    )
    from workbench.core.probes.metrics import MetricsError

    spec = LoadSpec(concurrency=args.concurrency, requests=args.requests if args.duration is None else None,
                    duration=args.duration, prompt_tokens=args.prompt_tokens, max_tokens=args.max_tokens,
                    prefix_tokens=args.prefix_tokens, seed=args.seed,
                    endpoint="/v1/chat/completions" if args.chat else "/v1/completions")
    if spec.requests is None and spec.duration is None:
        spec.requests = 20
    try:
        spec.check()
    except ValueError as exc:
        return _fail(f"load: {exc}")
    show = sys.stderr.isatty() and not args.with_vllm_bench

    def progress(done: int, total: int, seconds: float) -> None:
        sys.stderr.write(progress_bar(done, total, seconds, spec.duration))
        sys.stderr.flush()

    try:
        report = run_vllm_bench(args.url, spec, args.vllm) if args.with_vllm_bench else \
            run_load(args.url, spec, progress if show else None)
    except MetricsError as exc:
        return _fail(str(exc))
    if show:
        sys.stderr.write("\n")
    sys.stdout.write(json.dumps(report) + "\n" if args.json else report_text(report))
    return 0 if report["completed"] > 0 else 1


def cmd_profile_server(args: argparse.Namespace) -> int:
    from workbench.core.probes.metrics import MetricsError
    from workbench.core.probes.torchprof import ProfilerError, profile_server

    def progress(text: str) -> None:
        if not args.json:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    try:
        result = profile_server(args.url, args.seconds, args.trace_dir, progress)
    except (ProfilerError, MetricsError) as exc:
        return _fail(str(exc))
    sys.stdout.write(json.dumps(result) + "\n" if args.json else f"trace: {result['trace'] or result['note']}\n")
    return 0
