"""The real vLLM under `workbench metrics` and `workbench load`: one server, both commands."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.helpers import free_port, wait_until, workbench
from tests.real_vllm.conftest import serve_command

pytestmark = [pytest.mark.real_vllm, pytest.mark.usefixtures("vllm_env")]


def healthy(client: httpx.Client, url: str, proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        return True  # exited: the assertion below says so
    try:
        return client.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(1500)  # a start takes minutes on a busy 2-core machine
def test_metrics_parsed_and_a_ten_request_load(vllm_python, tiny_model, tmp_path, no_leaks) -> None:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(serve_command(vllm_python, tiny_model, port), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as client:  # one client: a new one per poll builds an SSL context each time
            wait_until(lambda: healthy(client, url, proc), timeout=900, interval=0.5, what="the real server's /health")
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]

        done = workbench("load", url, "--requests", "10", "--concurrency", "2", "--prompt-tokens", "24",
                         "--max-tokens", "16", "--json", timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["completed"] == 10 and report["failed"] == 0, report["errors"]
        assert report["output_throughput"] > 0 and report["request_throughput"] > 0
        assert report["median_ttft_ms"] > 0 and report["median_itl_ms"] > 0 and report["median_tpot_ms"] > 0
        assert report["total_output_tokens"] == 10 * 16  # ignore_eos: every request runs to max_tokens

        done = workbench("metrics", url, "--once", "--json", "--interval", "0.5", timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        snapshot = json.loads(done.stdout)
        total = snapshot["all"]
        assert snapshot["source"] == "metrics" and set(snapshot["engines"]) == {"0"}
        assert {"running", "waiting", "kv_usage"} <= set(total)
        # the load's 11 requests (one uncounted first) are in the histograms since start
        assert total["ttft"]["count"] >= 11 and total["ttft"]["p50"] > 0
        assert total["e2e"]["count"] >= 11 and "itl" in total
        for name in ("running", "waiting", "kv_usage", "prompt_tokens", "generation_tokens", "ttft", "itl", "e2e"):
            assert name not in snapshot["missing"], (name, snapshot["missing"])
        print(f"\nreal vLLM under load: {report['output_throughput']:.1f} output tok/s, "
              f"TTFT p50 {report['median_ttft_ms']:.0f} ms; /metrics missing: {snapshot['missing']}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
