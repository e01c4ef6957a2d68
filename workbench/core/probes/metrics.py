"""A live server's numbers: `/metrics` through prometheus_client's parser, the stats line as fallback.

vLLM V1 names first, the older (V0) names where V1's are missing; one set of numbers per
`engine` label (a data-parallel rank each) plus their total. Rates and latency quantiles are
derived over a sliding window of scrapes: counter deltas over time, and quantiles from the
histogram bucket deltas (interpolated inside a bucket, as Prometheus' histogram_quantile does).
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

# what we call it → the names vLLM has used for it, newest first
GAUGES = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "prefix_hit_rate_gauge": ("vllm:gpu_prefix_cache_hit_rate",),  # V0: a ratio, not counters
}
COUNTERS = {
    "prompt_tokens": ("vllm:prompt_tokens",),
    "generation_tokens": ("vllm:generation_tokens",),
    "preemptions": ("vllm:num_preemptions",),
    "prefix_queries": ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
    "prefix_hits": ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
    "requests_ok": ("vllm:request_success",),
}
HISTOGRAMS = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "tpot": ("vllm:request_time_per_output_token_seconds", "vllm:time_per_output_token_seconds"),
    "e2e": ("vllm:e2e_request_latency_seconds",),
}
TOTAL = "all"


class MetricsError(Exception):
    """No numbers from this URL: unreachable, or not a vLLM server's /metrics. One line."""


@dataclass
class EngineNumbers:
    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    # name → sorted [(upper bound, cumulative count)], +Inf last
    histograms: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # what we call it → the family it came from


@dataclass
class Scrape:
    at: float
    engines: dict[str, EngineNumbers]
    source: str = "metrics"  # or "log" (the stats line)


def _family_name(name: str, kind: str) -> str:
    # untyped text keeps the _total suffix; typed counters have it stripped by the parser
    return name[: -len("_total")] if kind in ("unknown", "untyped") and name.endswith("_total") else name


def parse_metrics(text: str, at: float | None = None) -> Scrape:
    """Parse the exposition text; MetricsError when it is not a vLLM server's."""
    values: dict[str, dict[str, Any]] = {}  # family → engine → value (float or {le: count})
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise MetricsError(f"not Prometheus text ({exc})") from None
    for family in families:
        name = _family_name(family.name, family.type)
        if not name.startswith("vllm:"):
            continue
        per_engine = values.setdefault(name, {})
        for sample in family.samples:
            engine = sample.labels.get("engine", "0")
            if sample.name.endswith("_bucket"):
                buckets = per_engine.setdefault(engine, {})
                if not isinstance(buckets, dict):
                    continue
                le = float(sample.labels.get("le", "inf"))
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name.endswith(("_created", "_count", "_sum", "_gsum", "_gcount")):
                continue
            elif not isinstance(per_engine.get(engine), dict):
                # other labels (finished_reason, model_name) are summed over
                per_engine[engine] = per_engine.get(engine, 0.0) + sample.value
    if not values:
        raise MetricsError("no vllm: metrics in the reply (is this a vLLM server?)")
    engines: dict[str, EngineNumbers] = {}
    for table, kind in ((GAUGES, "gauges"), (COUNTERS, "counters"), (HISTOGRAMS, "histograms")):
        for ours, names in table.items():
            for name in names:
                if name not in values:
                    continue
                for engine, value in values[name].items():
                    numbers = engines.setdefault(engine, EngineNumbers())
                    if kind == "histograms" and isinstance(value, dict):
                        numbers.histograms[ours] = sorted(value.items())
                    elif kind != "histograms" and not isinstance(value, dict):
                        getattr(numbers, kind)[ours] = value
                    else:
                        continue
                    numbers.names[ours] = name
                break
    if not engines:
        raise MetricsError("vllm: metrics but none of the serving ones (running, tokens, latency)")
    return Scrape(time.time() if at is None else at, engines)


def scrape(url: str, client: httpx.Client | None = None, timeout: float = 5.0) -> Scrape:
    """GET URL/metrics and parse it; every failure is a MetricsError with one line."""
    target = url.rstrip("/") + "/metrics"
    try:
        response = (client or httpx).get(target, timeout=timeout)  # type: ignore[attr-defined]
    except httpx.HTTPError as exc:
        raise MetricsError(f"{target}: unreachable ({type(exc).__name__}: {exc})") from None
    if response.status_code != 200:
        raise MetricsError(f"{target}: HTTP {response.status_code} (not a vLLM server's /metrics)")
    try:
        return parse_metrics(response.text)
    except MetricsError as exc:
        raise MetricsError(f"{target}: {exc}") from None


# -- the stats log line (fallback when /metrics cannot be read) -------------------------------

_STATS = re.compile(
    r"(?:Engine (?P<engine>\d+): )?Avg prompt throughput: (?P<prompt>[\d.]+) tokens/s, "
    r"Avg generation throughput: (?P<gen>[\d.]+) tokens/s, Running: (?P<running>\d+) reqs"
    r"(?:, Swapped: \d+ reqs)?, (?:Pending|Waiting): (?P<waiting>\d+) reqs")
_KV = re.compile(r"(?:GPU|NPU|CPU|XPU|TPU)? ?KV cache usage: (?P<kv>[\d.]+)%")
_PREEMPT = re.compile(r"Preemptions: (?P<n>\d+)")
_PREFIX = re.compile(r"(?<!External )(?<!MM )Prefix cache hit rate: (?:GPU: )?(?P<rate>[\d.]+)%")


def parse_stats_line(line: str) -> dict[str, Any] | None:
    """The numbers of vLLM's periodic stats line (rates already over its interval), or None."""
    match = _STATS.search(line)
    if not match:
        return None
    out: dict[str, Any] = {"engine": str(int(match["engine"] or 0)), "prompt_tps": float(match["prompt"]),
                           "generation_tps": float(match["gen"]), "running": int(match["running"]),
                           "waiting": int(match["waiting"])}
    if kv := _KV.search(line):
        out["kv_usage"] = float(kv["kv"]) / 100
    if pre := _PREEMPT.search(line):
        out["preemptions"] = int(pre["n"])
    if prefix := _PREFIX.search(line):
        out["prefix_hit_rate"] = float(prefix["rate"]) / 100
    return out


def derived_from_stats_lines(lines: list[str]) -> dict[str, Any] | None:
    """`derived()`'s shape from the latest stats line of each engine (rates as vLLM computed them)."""
    latest: dict[str, dict[str, Any]] = {}
    for line in lines:
        if (stats := parse_stats_line(line)) is not None:
            latest[stats.pop("engine")] = stats
    if not latest:
        return None
    engines = {engine: {k: v for k, v in stats.items() if k != "preemptions"} for engine, stats in latest.items()}
    total: dict[str, Any] = {}
    for key in ("prompt_tps", "generation_tps", "running", "waiting"):
        total[key] = sum(e.get(key, 0) for e in engines.values())
    kvs = [e["kv_usage"] for e in engines.values() if "kv_usage" in e]
    if kvs:
        total["kv_usage"] = max(kvs)
    return {"source": "log", "engines": engines, TOTAL: total,
            "missing": ["ttft", "itl", "e2e", "tpot (the stats line has no latencies)"]}


# -- derived numbers over a window -------------------------------------------------------------


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a cumulative bucket list, linear inside the bucket (histogram_quantile)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound  # beyond the last finite bucket: its bound is all we know
            inside = count - previous_count
            if inside <= 0:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / inside
        previous_bound, previous_count = bound, count
    return previous_bound


def bucket_delta(new: list[tuple[float, float]], old: list[tuple[float, float]] | None) -> list[tuple[float, float]]:
    if not old:
        return list(new)
    before = dict(old)
    delta = [(bound, count - before.get(bound, 0.0)) for bound, count in new]
    return delta if all(c >= 0 for _, c in delta) else list(new)  # a restart reset the counters


def _sum_engines(engines: dict[str, EngineNumbers]) -> EngineNumbers:
    total = EngineNumbers()
    for numbers in engines.values():
        for key, value in numbers.gauges.items():
            total.gauges[key] = max(total.gauges.get(key, 0.0), value) if key == "kv_usage" else \
                total.gauges.get(key, 0.0) + value
        for key, value in numbers.counters.items():
            total.counters[key] = total.counters.get(key, 0.0) + value
        for key, buckets in numbers.histograms.items():
            merged = dict(total.histograms.get(key, []))
            for bound, count in buckets:
                merged[bound] = merged.get(bound, 0.0) + count
            total.histograms[key] = sorted(merged.items())
        total.names.update(numbers.names)
    return total


def derive(new: EngineNumbers, old: EngineNumbers | None, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("running", "waiting", "kv_usage"):
        if key in new.gauges:
            out[key] = new.gauges[key]
    rate_of = {"prompt_tokens": "prompt_tps", "generation_tokens": "generation_tps", "preemptions": "preemptions_ps"}
    for counter, name in rate_of.items():
        if counter in new.counters and old is not None and seconds > 0:
            delta = new.counters[counter] - old.counters.get(counter, 0.0)
            out[name] = (delta if delta >= 0 else new.counters[counter]) / seconds  # < 0: the server restarted
    if "preemptions" in new.counters:
        out["preemptions_total"] = new.counters["preemptions"]
    queries, hits = new.counters.get("prefix_queries"), new.counters.get("prefix_hits")
    if queries is not None and hits is not None:
        dq = queries - (old.counters.get("prefix_queries", 0.0) if old else 0.0)
        dh = hits - (old.counters.get("prefix_hits", 0.0) if old else 0.0)
        if dq > 0:
            out["prefix_hit_rate"] = dh / dq
        elif queries > 0:
            out["prefix_hit_rate"] = hits / queries
    elif "prefix_hit_rate_gauge" in new.gauges:
        out["prefix_hit_rate"] = new.gauges["prefix_hit_rate_gauge"]
    for key, buckets in new.histograms.items():
        delta = bucket_delta(buckets, old.histograms.get(key) if old else None)
        window = "window" if old else "since start"
        if not delta or delta[-1][1] <= 0:
            delta, window = buckets, "since start"  # nothing finished in the window
        p50, p99 = quantile(delta, 0.5), quantile(delta, 0.99)
        if p50 is not None:
            out[key] = {"p50": p50, "p99": p99, "count": delta[-1][1], "over": window}
    return out


class MetricsWindow:
    """The last `seconds` of scrapes; `derived()` compares the newest with the oldest."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds
        self.scrapes: deque[Scrape] = deque()

    def add(self, sample: Scrape) -> None:
        self.scrapes.append(sample)
        while len(self.scrapes) > 2 and sample.at - self.scrapes[1].at >= self.seconds:
            self.scrapes.popleft()

    def derived(self) -> dict[str, Any] | None:
        if not self.scrapes:
            return None
        new = self.scrapes[-1]
        old = self.scrapes[0] if len(self.scrapes) > 1 else None
        seconds = new.at - old.at if old else 0.0
        engines = {}
        for engine, numbers in sorted(new.engines.items()):
            engines[engine] = derive(numbers, old.engines.get(engine) if old else None, seconds)
        total = derive(_sum_engines(new.engines), _sum_engines(old.engines) if old else None, seconds)
        wanted = [*GAUGES.keys() - {"prefix_hit_rate_gauge"}, *COUNTERS, *HISTOGRAMS]
        present = set().union(*(n.gauges.keys() | n.counters.keys() | n.histograms.keys() for n in new.engines.values()))
        missing = [k for k in wanted if k not in present and not (k.startswith("prefix") and "prefix_hit_rate_gauge" in present)]
        return {"source": new.source, "window_s": round(seconds, 3), "engines": engines, TOTAL: total,
                "missing": missing}


def ms(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f}ms" if value < 10 else f"{value:.0f}s")


def summary_line(derived: dict[str, Any] | None) -> str:
    """One line for a pane header: tokens/s, running/waiting, KV usage, TTFT."""
    if not derived:
        return ""
    total = derived[TOTAL]
    parts = []
    if "generation_tps" in total:
        parts.append(f"gen {total['generation_tps']:.0f} tok/s")
    if "running" in total:
        parts.append(f"run {total['running']:.0f} wait {total.get('waiting', 0):.0f}")
    if "kv_usage" in total:
        parts.append(f"KV {total['kv_usage'] * 100:.0f}%")
    if "ttft" in total:
        parts.append(f"TTFT p50 {ms(total['ttft']['p50'])} p99 {ms(total['ttft']['p99'])}")
    if total.get("preemptions_ps"):
        parts.append(f"preempt {total['preemptions_ps']:.1f}/s")
    return " · ".join(parts)
