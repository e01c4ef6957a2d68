"""The few numbers of vLLM's /metrics that say whether a serving server is working: requests in
flight and tokens produced. (Only what supervision needs; not a metrics client.)"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
TOKENS = "vllm:generation_tokens"  # a counter: the parser drops the _total suffix


@dataclass(frozen=True)
class ServingNumbers:
    running: float
    waiting: float
    tokens: float | None  # generation tokens so far; None when the server does not export it

    @property
    def in_flight(self) -> float:
        return self.running + self.waiting


def parse_serving_numbers(text: str) -> ServingNumbers:
    """Sum each gauge over its label sets (one per engine / model); absent means 0."""
    sums: dict[str, float] = {}
    wanted = {RUNNING: RUNNING, WAITING: WAITING, TOKENS + "_total": TOKENS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key is not None:
                sums[key] = sums.get(key, 0.0) + float(sample.value)
    return ServingNumbers(sums.get(RUNNING, 0.0), sums.get(WAITING, 0.0), sums.get(TOKENS))


def fetch_serving_numbers(base_url: str, timeout: float = 2.0) -> ServingNumbers | None:
    """None when /metrics does not answer or is not Prometheus text."""
    try:
        response = httpx.get(base_url + "/metrics", timeout=timeout)
        if response.status_code != 200:
            return None
        return parse_serving_numbers(response.text)
    except (httpx.HTTPError, ValueError):
        return None


def health_status(base_url: str, timeout: float = 2.0) -> int | None:
    """The status /health answers with; None when nothing answers."""
    try:
        return httpx.get(base_url + "/health", timeout=timeout).status_code
    except httpx.HTTPError:
        return None
