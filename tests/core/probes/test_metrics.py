"""The /metrics parser and the derived numbers, on exposition texts of our own in vLLM's shapes."""

from __future__ import annotations

import pytest

from workbench.core.probes.metrics import (
    TOTAL,
    MetricsError,
    MetricsWindow,
    derived_from_stats_lines,
    parse_metrics,
    parse_stats_line,
    quantile,
    summary_line,
)

LABELS = 'engine="{e}",model_name="m"'


def v1_text(engine: str = "0", gen: float = 100.0, prompt: float = 400.0, ttft=(0, 0, 0), running: int = 3,
            queries: float = 1000.0, hits: float = 250.0) -> str:
    lab = LABELS.format(e=engine)
    le = ("0.01", "0.1", "1.0", "+Inf")
    cumulative = [sum(ttft[: i + 1]) for i in range(3)] + [sum(ttft)]
    lines = [
        "# TYPE vllm:num_requests_running gauge", f"vllm:num_requests_running{{{lab}}} {running}.0",
        "# TYPE vllm:num_requests_waiting gauge", f"vllm:num_requests_waiting{{{lab}}} 1.0",
        "# TYPE vllm:kv_cache_usage_perc gauge", f"vllm:kv_cache_usage_perc{{{lab}}} 0.25",
        "# TYPE vllm:generation_tokens counter", f"vllm:generation_tokens_total{{{lab}}} {gen}",
        "# TYPE vllm:prompt_tokens counter", f"vllm:prompt_tokens_total{{{lab}}} {prompt}",
        "# TYPE vllm:num_preemptions counter", f"vllm:num_preemptions_total{{{lab}}} 2.0",
        "# TYPE vllm:prefix_cache_queries counter", f"vllm:prefix_cache_queries_total{{{lab}}} {queries}",
        "# TYPE vllm:prefix_cache_hits counter", f"vllm:prefix_cache_hits_total{{{lab}}} {hits}",
        "# TYPE vllm:request_success counter",
        f'vllm:request_success_total{{{lab},finished_reason="length"}} 4.0',
        f'vllm:request_success_total{{{lab},finished_reason="stop"}} 1.0',
        "# TYPE vllm:time_to_first_token_seconds histogram",
        *(f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{b}"}} {c}.0' for b, c in zip(le, cumulative, strict=True)),
        f"vllm:time_to_first_token_seconds_count{{{lab}}} {sum(ttft)}.0",
        f"vllm:time_to_first_token_seconds_sum{{{lab}}} 1.5",
    ]
    return "\n".join(lines) + "\n"


V0_TEXT = """# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2.0
# TYPE vllm:gpu_prefix_cache_hit_rate gauge
vllm:gpu_prefix_cache_hit_rate{model_name="m"} 0.125
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="m"} 50.0
# TYPE vllm:time_per_output_token_seconds histogram
vllm:time_per_output_token_seconds_bucket{le="0.01",model_name="m"} 0.0
vllm:time_per_output_token_seconds_bucket{le="0.025",model_name="m"} 10.0
vllm:time_per_output_token_seconds_bucket{le="+Inf",model_name="m"} 10.0
vllm:time_per_output_token_seconds_count{model_name="m"} 10.0
vllm:time_per_output_token_seconds_sum{model_name="m"} 0.2
"""


def test_v1_names_per_engine_with_rates_and_quantiles_from_bucket_deltas() -> None:
    window = MetricsWindow(60)
    window.add(parse_metrics(v1_text(gen=100, prompt=400, ttft=(5, 0, 0)), at=10.0))
    window.add(parse_metrics(v1_text(gen=300, prompt=800, ttft=(5, 10, 0), queries=2000, hits=750), at=12.0))
    d = window.derived()
    assert d is not None and d["window_s"] == 2.0
    total = d[TOTAL]
    assert total["running"] == 3 and total["waiting"] == 1 and total["kv_usage"] == 0.25
    assert total["generation_tps"] == pytest.approx(100.0) and total["prompt_tps"] == pytest.approx(200.0)
    assert total["prefix_hit_rate"] == pytest.approx(0.5)  # (750-250)/(2000-1000): the window, not since start
    # the 5 fast first tokens were before the window: only the 10 in (0.01, 0.1] count
    assert 0.01 < total["ttft"]["p50"] < 0.1 and total["ttft"]["over"] == "window"
    assert "ttft" not in d["missing"] and "itl" in d["missing"] and "e2e" in d["missing"]
    assert "gen 100 tok/s" in summary_line(d) and "KV 25%" in summary_line(d)


def test_older_names_fill_in_where_v1_names_are_missing() -> None:
    scrape = parse_metrics(V0_TEXT, at=1.0)
    numbers = scrape.engines["0"]
    assert numbers.names["kv_usage"] == "vllm:gpu_cache_usage_perc"
    assert numbers.names["itl"] == "vllm:time_per_output_token_seconds"
    window = MetricsWindow()
    window.add(scrape)
    total = window.derived()[TOTAL]
    assert total["kv_usage"] == 0.5 and total["prefix_hit_rate"] == 0.125
    assert 0.01 < total["itl"]["p50"] <= 0.025 and total["itl"]["over"] == "since start"
    assert "generation_tps" not in total  # one scrape: no rate yet


def test_two_data_parallel_ranks_are_kept_apart_and_summed() -> None:
    window = MetricsWindow()
    window.add(parse_metrics(v1_text("0", gen=0) + v1_text("1", gen=0).replace("# TYPE", "# XTYPE"), at=0.0))
    window.add(parse_metrics(v1_text("0", gen=100, running=2) + v1_text("1", gen=300, running=5)
                             .replace("# TYPE", "# XTYPE"), at=1.0))
    d = window.derived()
    assert set(d["engines"]) == {"0", "1"}
    assert d["engines"]["0"]["generation_tps"] == pytest.approx(100)
    assert d["engines"]["1"]["generation_tps"] == pytest.approx(300)
    assert d[TOTAL]["generation_tps"] == pytest.approx(400) and d[TOTAL]["running"] == 7


def test_missing_metrics_and_non_vllm_text() -> None:
    only_running = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine=\"0\"} 1.0\n"
    window = MetricsWindow()
    window.add(parse_metrics(only_running, at=0.0))
    d = window.derived()
    assert d[TOTAL] == {"running": 1.0}
    assert {"waiting", "kv_usage", "generation_tokens", "ttft"} <= set(d["missing"])
    with pytest.raises(MetricsError, match="no vllm: metrics"):
        parse_metrics("# TYPE go_goroutines gauge\ngo_goroutines 7\n")
    with pytest.raises(MetricsError, match="none of the serving ones"):
        parse_metrics("# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{block_size=\"16\"} 1.0\n")
    with pytest.raises(MetricsError, match="not Prometheus text"):
        parse_metrics("<html>hello</html>\n")


def test_stats_line_fallback() -> None:
    line = ("(APIServer pid=610) INFO 12-02 08:01:16 [loggers.py:236] Engine 001: Avg prompt throughput: 1520.3 "
            "tokens/s, Avg generation throughput: 180.5 tokens/s, Running: 12 reqs, Waiting: 3 reqs, "
            "Preemptions: 4, GPU KV cache usage: 88.1%, Prefix cache hit rate: 21.4%")
    stats = parse_stats_line(line)
    assert stats == {"engine": "1", "prompt_tps": 1520.3, "generation_tps": 180.5, "running": 12, "waiting": 3,
                     "kv_usage": pytest.approx(0.881), "preemptions": 4, "prefix_hit_rate": pytest.approx(0.214)}
    assert parse_stats_line("INFO Starting vLLM API server") is None
    d = derived_from_stats_lines([line, line.replace("Engine 001", "Engine 000")])
    assert d["source"] == "log" and d[TOTAL]["generation_tps"] == pytest.approx(361.0)


def test_quantile_interpolates_inside_a_bucket() -> None:
    buckets = [(0.1, 0.0), (0.2, 10.0), (float("inf"), 10.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.15)
    assert quantile([(0.1, 0.0), (float("inf"), 4.0)], 0.5) == 0.1  # beyond the last bound
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None
