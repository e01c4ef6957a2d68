"""Offline: client errors are warnings, never false-ready; the CPU backend's order (KV cache, then
the warm-up compile) with shared-memory waits during the warm-up is not a hang."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import workbench
from workbench.core.knowledge.analyze import analyze_path
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.phases import PhaseTracker
from workbench.core.knowledge.signatures import load_knowledge_base

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def analyze(name: str) -> dict:
    return analyze_path(str(LOGS / name), Recogniser(load_knowledge_base(include_user=False)))[0].to_dict()


def test_the_phase_tracker_follows_the_cpu_order_and_still_refuses_going_back() -> None:
    cpu = PhaseTracker()
    assert [cpu.advance(p, i, i) for i, p in enumerate(["loading", "kv_cache", "compiling", "api_starting"])] == [True] * 4
    assert cpu.orders == ("cpu",) and not cpu.advance("kv_cache", 9, 9)
    gpu = PhaseTracker()
    assert [gpu.advance(p, i, i) for i, p in enumerate(["loading", "compiling", "kv_cache", "graph_capture"])] == [True] * 4
    assert not gpu.advance("compiling", 9, 9)


def test_a_cpu_warm_up_with_shm_waits_then_progress_is_healthy_not_hung() -> None:
    result = analyze("v0.32-cpu-warmup-shm.log")
    assert result["verdict"] == "healthy"
    assert [p["name"] for p in result["phases"]][:4] == ["starting", "loading", "kv_cache", "compiling"]
    shm = next(f for f in result["findings"] if f["id"] == "shm_broadcast_wait")
    assert shm["count"] == 2 and shm["benign"]


def test_the_same_log_cut_during_the_warm_up_is_incomplete_not_hung() -> None:
    result = analyze("v0.32-cpu-warmup-shm-cut.log")
    assert (result["verdict"], result["last_phase"]) == ("incomplete", "compiling")


def test_a_client_404_for_an_unknown_model_is_healthy_with_the_warning() -> None:
    done = workbench("analyze", "--json", str(LOGS / "v0.7-client-404.log"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    result = result[0] if isinstance(result, list) else result
    assert (result["verdict"], result["root_cause"]) == ("healthy", None)
    found = {f["id"]: f for f in result["findings"]}
    assert found["client_error_404"]["severity"] == "warning" and found["client_error_404"]["count"] == 2
    assert found["client_error_404"]["note"] == "2× 404: model gpt-4o is not served (GET /v1/models lists the served names)"
    assert "unrecognised_error" not in found


def test_over_long_prompts_are_counted_with_the_limit_as_example() -> None:
    result = analyze("failures/client_context_length.log")
    found = {f["id"]: f for f in result["findings"]}
    assert found["client_error_400"]["note"] == "1× 400: maximum context length is 256 tokens"
    assert result["verdict"] == "healthy"
