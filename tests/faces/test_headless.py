"""Every simulator scenario under `workbench run --headless`: the verdict, the root cause, and
the flag or variable that makes the failure go away — through the real CLI, pty and HTTP."""

from __future__ import annotations

import json
import sys

import psutil
import pytest

from tests.helpers import free_port, workbench

SIM = [sys.executable, "-m", "workbench.sim"]
SCALE = ["--time-scale", "0.1"]


def headless(scenario: str, *extra: str, options: tuple[str, ...] = (), env: dict | None = None) -> dict:
    port = free_port()
    done = workbench("run", "--headless", "--json", *options, "--", *SIM, scenario, "--port", str(port), *SCALE, *extra,
                     env=env, timeout=120)
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["exit_code"] == done.returncode, done.stderr[-2000:]
    for pid in result["known_pids"]:  # the whole tree is gone when the workbench returns
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return result


CASES = [
    # scenario, extra args, env, verdict, root cause id, exit code
    ("healthy", (), None, "healthy", None, 0),
    ("oom-load", (), None, "failed", "cuda_oom", 10),
    ("oom-graph-capture", (), None, "failed", "cuda_oom", 10),
    ("oom-graph-capture", ("--enforce-eager",), None, "healthy", None, 0),
    ("kv-cache-too-small", (), None, "failed", "kv_cache_too_small", 10),
    ("kv-cache-too-small", ("--max-model-len", "8192"), None, "healthy", None, 0),
    ("port-in-use", (), None, "failed", "port_in_use", 10),
    ("false-ready", (), None, "false-ready", "illegal_memory_access", 11),
    ("dynamo-interpolate", (), None, "failed", "npu_contiguous_interpolate", 10),
    ("dynamo-interpolate", (), {"TORCHDYNAMO_DISABLE": "1"}, "healthy", None, 0),
    ("hccl-bind", (), None, "failed", "hccl_bind", 10),
    ("acl-graph-capture", (), None, "failed", "acl_graph_capture", 10),
    ("acl-graph-capture", (), {"HCCL_OP_EXPANSION_MODE": "AIV"}, "healthy", None, 0),
    ("acl-graph-capture", ("--enforce-eager",), None, "healthy", None, 0),
    ("nasty-output", (), None, "healthy", None, 0),
    ("healthy", ("--log-format", "0.32"), None, "healthy", None, 0),
    ("oom-load", ("--log-format", "0.32"), None, "failed", "cuda_oom", 10),
]


@pytest.mark.parametrize("scenario, extra, env, verdict, root, code", CASES,
                         ids=[f"{c[0]}{'-' + '-'.join(c[1]) if c[1] else ''}{'-env' if c[2] else ''}" for c in CASES])
def test_scenario_verdict_and_root_cause(scenario, extra, env, verdict, root, code, no_leaks) -> None:
    result = headless(scenario, *extra, env=env)
    assert result["verdict"] == verdict, result["reason"]
    assert (result["root_cause"] or {}).get("id") == root
    assert result["exit_code"] == code
    if root:
        assert result["root_cause"]["line"] and result["root_cause"]["title"]
        assert not [f for f in result["findings"] if f["id"] == "unrecognised_error"], result["findings"]
    if verdict == "healthy":
        assert result["smoke"]["ok"] and result["smoke"]["status"] == 200
        names = [p["name"] for p in result["phases"]]
        assert names[0] == "starting" and "ready" in names
        assert names == sorted(names, key=["starting", "loading", "compiling", "kv_cache", "graph_capture",
                                           "api_starting", "ready", "serving"].index)


def test_machine_applicable_action_is_filled_from_the_log(no_leaks) -> None:
    result = headless("kv-cache-too-small")
    first = result["root_cause"]["actions"][0]
    assert first["arg_delta"] == {"--max-model-len": "8192"}


def test_eager_skips_compile_and_capture(no_leaks) -> None:
    graph = [p["name"] for p in headless("healthy")["phases"]]
    eager = [p["name"] for p in headless("healthy", "--enforce-eager")["phases"]]
    assert "compiling" in graph and "graph_capture" in graph
    assert "compiling" not in eager and "graph_capture" not in eager


def test_hang_is_hung_with_stacks_showing_the_frame(no_leaks) -> None:
    result = headless("hang", options=("--stall-window", "2"))
    assert result["verdict"] == "hung" and result["exit_code"] == 12
    assert result["dumps"]
    dump = json.load(open(result["dumps"][0]))
    frames = [f["name"] for p in dump["processes"] for t in p["threads"] for f in t["frames"]]
    assert "wait_for_all_reduce" in frames
    assert len([p for p in dump["processes"] if p["threads"]]) == 2  # API server and engine core


def test_slow_graph_capture_is_progress_not_a_hang(no_leaks) -> None:
    port = free_port()
    done = workbench("run", "--headless", "--json", "--stall-window", "2", "--", *SIM, "slow-graph-capture",
                     "--port", str(port), "--time-scale", "0.25", timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["verdict"] == "healthy", result["reason"]
    capture = next(p for p in result["phases"] if p["name"] == "graph_capture")
    assert capture["seconds"] > 2  # longer than the stall window, yet not hung


def test_port_taken_before_launch_is_refused_with_the_holder_named(no_leaks) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = workbench("run", "--headless", "--", *SIM, "healthy", "--port", str(port), *SCALE)
        assert done.returncode == 3
        assert f"port {port} is already in use by PID" in done.stderr
        assert "Traceback" not in done.stderr
        forced = workbench("run", "--headless", "--json", "--force", "--", *SIM, "healthy", "--port", str(port), *SCALE)
        result = json.loads(forced.stdout.strip().splitlines()[-1])
        assert result["verdict"] == "failed" and result["root_cause"]["id"] == "port_in_use"


def test_a_command_that_does_not_exist_is_a_clear_error() -> None:
    done = workbench("run", "--headless", "--", "no-such-command-xyz", "--port", "1")
    assert done.returncode == 2
    assert "command not found" in done.stderr and "Traceback" not in done.stderr


def test_session_directory_holds_log_events_and_is_private(tmp_path, no_leaks) -> None:
    session = tmp_path / "session"
    result = headless("oom-load", options=("--session-dir", str(session)))
    assert result["session_dir"] == str(session)
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    kinds = {e["kind"] for e in events}
    assert {"run_started", "lines", "phase", "finding", "exited", "verdict"} <= kinds
    assert (session / "runs" / "r1" / "output.log").read_bytes().count(b"CUDA out of memory") >= 1
    for path in [session, *session.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_secret_values_never_reach_events(tmp_path, no_leaks) -> None:
    session = tmp_path / "s"
    headless("healthy", "--api-key", "sk-verysecretvalue", options=("--session-dir", str(session), "--env", "HF_TOKEN=hf_supersecret123"))
    events = (session / "events.jsonl").read_text()
    assert "sk-verysecretvalue" not in events and "hf_supersecret123" not in events
    assert "***" in events


def test_log_flood_is_read_whole_and_stays_healthy(no_leaks) -> None:
    result = headless("log-flood", "--rate", "0", "--lines", "200000", options=("--quiet", "--stop-after", "3"))
    assert result["verdict"] == "healthy"
    assert result["lines"] > 200_000  # every flooded line reached the store


def test_compare_graph_failure_with_eager_success(tmp_path, no_leaks) -> None:
    graph = headless("oom-graph-capture", options=("--session-dir", str(tmp_path / "graph")))
    eager = headless("oom-graph-capture", "--enforce-eager", options=("--session-dir", str(tmp_path / "eager")))
    assert (graph["verdict"], eager["verdict"]) == ("failed", "healthy")
    done = workbench("compare", "--json", str(tmp_path / "graph" / "runs" / "r1"), str(tmp_path / "eager" / "runs" / "r1"))
    report = json.loads(done.stdout)
    assert "fails only in graph mode" in report["conclusion"]
    assert "cuda_oom" in report["findings_only_in"][str(tmp_path / "graph" / "runs" / "r1")]
