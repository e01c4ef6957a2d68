"""`workbench metrics`, `load` and `profile-server` against the simulator, and their refusals."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.helpers import free_port, workbench
from tests.simserver import sim_server


def test_metrics_and_load_on_a_healthy_simulated_server(port: int, no_leaks: None) -> None:
    with sim_server(port) as url:
        done = workbench("load", url, "--requests", "20", "--concurrency", "4", "--max-tokens", "16", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["completed"] == 20 and report["failed"] == 0
        assert report["output_throughput"] > 0 and report["request_throughput"] > 0
        for key in ("ttft", "tpot", "itl"):
            assert 0 < report[f"median_{key}_ms"] <= report[f"p99_{key}_ms"], key
        assert report["total_output_tokens"] == 20 * 16

        # the load moved the counters: the snapshot sees its 20 requests and the uncounted first one
        done = workbench("metrics", url, "--once", "--json", "--interval", "0.5")
        assert done.returncode == 0, done.stderr
        snapshot = json.loads(done.stdout)
        total = snapshot["all"]
        assert {"running", "waiting", "kv_usage", "generation_tps", "prompt_tps"} <= set(total)
        assert total["ttft"]["count"] == 21 and 0 < total["ttft"]["p50"] <= total["ttft"]["p99"]
        assert snapshot["missing"] == []

        text = workbench("metrics", url, "--once", "--interval", "0.2")
        assert text.returncode == 0 and "all engines: running 0, waiting 0" in text.stdout

        refused = workbench("profile-server", url, "--seconds", "0.1")
        assert refused.returncode == 2 and "--profiler-config" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_an_unreachable_url_or_a_non_vllm_metrics_is_refused_in_one_line(no_leaks: None) -> None:
    class NotVllm(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            body = b"# TYPE go_goroutines gauge\ngo_goroutines 7\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), NotVllm)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    other = f"http://127.0.0.1:{httpd.server_address[1]}"
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        for url, reason in ((dead, "unreachable"), (other, "no vllm: metrics")):
            for argv in (("metrics", url, "--once"), ("load", url, "--requests", "2")):
                done = workbench(*argv)
                assert done.returncode == 2, (argv, done.stderr)
                assert reason in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
                assert "Traceback" not in done.stderr
        missing = workbench("load", dead, "--with-vllm-bench", "--vllm", "no-such-vllm --flag")
        assert missing.returncode == 2 and "no-such-vllm --flag: not found" in missing.stderr
    finally:
        httpd.shutdown()


def test_the_profiler_relaunch_by_version() -> None:
    from workbench.core.probes.torchprof import relaunch_delta

    assert relaunch_delta("0.11.0", "/t") == ({}, {"VLLM_TORCH_PROFILER_DIR": "/t"})
    for newer in ("0.15.0", "0.32.0", None):
        args, env = relaunch_delta(newer, "/t")
        assert env == {} and json.loads(args["--profiler-config"]) == {"profiler": "torch", "torch_profiler_dir": "/t"}


def test_profile_server_starts_stops_and_finds_the_trace(port: int, tmp_path: Path, no_leaks: None) -> None:
    traces = tmp_path / "traces"
    with sim_server(port, env={"VLLM_TORCH_PROFILER_DIR": str(traces)}) as url:
        done = workbench("profile-server", url, "--seconds", "0.5", "--trace-dir", str(traces))
        assert done.returncode == 0, done.stderr
        assert "profiling ..." in done.stderr and "vLLM is writing the trace" in done.stderr  # /stop_profile blocks
        trace = Path(done.stdout.removeprefix("trace: ").strip())
        assert trace.is_file() and trace.parent == traces and ".trace" in trace.name
