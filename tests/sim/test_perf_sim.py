"""The simulator's scheduler on its own: slots, prefix caching, preemption, and its /metrics text."""

from __future__ import annotations

import argparse
import time

from prometheus_client.parser import text_string_to_metric_families

from workbench.sim.perf import Scheduler

PREFIX = " ".join(f"w{i}" for i in range(96))


def scheduler(*extra: str, seqs: int = 8, memory: float = 0.9) -> Scheduler:
    args = argparse.Namespace(max_num_seqs=seqs, gpu_memory_utilization=memory, model="m")
    return Scheduler(args, list(extra))


def drain(requests) -> list[int]:
    counts = []
    for request in requests:
        n = 0
        while request.tokens.get(timeout=60) is not None:
            n += 1
        counts.append(n)
    return counts


def samples(s: Scheduler) -> dict[str, float]:
    return {sample.name: sample.value for family in text_string_to_metric_families(s.metrics_text())
            for sample in family.samples if "_bucket" not in sample.name}


def test_prefix_caching_reuses_the_shared_prefix_and_its_absence_does_not() -> None:
    on, off = scheduler(), scheduler("--no-enable-prefix-caching")
    for s in (on, off):
        drain([s.submit(PREFIX + " first", 4)])  # the prefix is computed once
        assert drain([s.submit(PREFIX + f" q{i}", 4) for i in range(4)]) == [4, 4, 4, 4]
    hits = samples(on)
    assert hits["vllm:prefix_cache_hits_total"] >= 4 * 96  # six full blocks per later request
    assert samples(off)["vllm:prefix_cache_queries_total"] == 0
    assert hits["vllm:request_success_total"] == 5 and hits["vllm:generation_tokens_total"] == 20
    assert "Prefix cache hit rate: " in on.stats_line() and "Running: 0 reqs" in on.stats_line()


def test_max_num_seqs_bounds_the_batch_and_a_small_kv_cache_preempts() -> None:
    one = scheduler(seqs=1)
    requests = [one.submit("a b c", 30) for _ in range(3)]
    seen_waiting = 0
    while requests[0].generated < 5:  # a condition, polled
        seen_waiting = max(seen_waiting, samples(one)["vllm:num_requests_waiting"])
        time.sleep(0.01)
    assert samples(one)["vllm:num_requests_running"] == 1 and seen_waiting >= 1
    drain(requests)
    # 66 KV slots for four requests that grow to 70 tokens each: someone has to give its KV back
    tight = scheduler(seqs=4, memory=0.001)
    assert drain([tight.submit(" ".join(["x"] * 10), 60) for _ in range(4)]) == [60] * 4
    assert samples(tight)["vllm:num_preemptions_total"] > 0
    assert "Preemptions: " in tight.stats_line()
