"""`run --headless` on the simulator's hangs says where the tree is stuck: in the JSON result and
under the printed verdict, from real py-spy dumps of real processes."""

from __future__ import annotations

import json
import sys

import psutil
import pytest

from tests.helpers import free_port, workbench
from workbench.core.probes.stacks import py_spy_path
from workbench.faces.headless import summary_text

pytestmark = pytest.mark.skipif(py_spy_path() is None, reason="py-spy not installed")
SIM = [sys.executable, "-m", "workbench.sim"]


def hung(scenario: str, stall: str) -> dict:
    done = workbench("run", "--headless", "--json", "--stall-window", stall, "--", *SIM, scenario,
                     "--port", str(free_port()), "--time-scale", "0.1", timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["verdict"] == "hung", done.stderr[-2000:]
    for pid in result["known_pids"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return result


def test_sim_hang_result_and_printed_verdict_name_wait_for_all_reduce_and_the_engine_core(no_leaks) -> None:
    result = hung("hang", "8")
    stuck = result["stuck"]
    engine = next(p for p in stuck["processes"] if p["role"] == "EngineCore")
    assert engine["classification"] == "collective" and engine["top_frame"].startswith("wait_for_all_reduce")
    assert engine["state"] in ("S", "R") and engine["pid"] in result["known_pids"]
    assert stuck["headline"].startswith(f"EngineCore (PID {engine['pid']}): waiting in a collective")
    assert "wait_for_all_reduce" in stuck["headline"] and stuck["stuck"] is True
    dump = json.load(open(result["dumps"][0]))
    assert dump["stuck"] == stuck  # saved with the dump for `analyze` and the bundle
    printed = summary_text(result, colour=False)  # what `run --headless` prints without --json
    lines = printed.splitlines()
    at = lines.index("verdict: HUNG")
    under = "\n".join(lines[at + 2: at + 8])
    assert lines[at + 2].startswith("  stuck: EngineCore (PID") and "wait_for_all_reduce" in under
    assert "comm-check" in under


def test_tp_hang_names_the_odd_rank_first_with_its_function_and_groups_the_others(no_leaks) -> None:
    result = hung("tp-hang", "3")
    stuck = result["stuck"]
    odd = stuck["odd_one_out"]
    assert odd["process"] == "Worker_TP1" and odd["classification"] == "loading_weights"
    assert odd["others"] == ["Worker_TP0", "Worker_TP2", "Worker_TP3"] and odd["others_function"] == "all_reduce"
    assert stuck["headline"].startswith("Worker_TP1 is still in load_weights → safetensors_load_file")
    assert "while TP0, TP2, TP3 are waiting in a collective: all_reduce since " in stuck["headline"]
    assert stuck["summary"][1].startswith("3 workers: waiting in a collective")
    workers = [p for p in stuck["processes"] if p["role"] == "Worker"]
    assert len(workers) == 4 and all(p["cpu_percent"] is not None for p in workers)
