"""End-to-end on the real vLLM: healthy start, eager vs graph, a taken port, stack dumps of
the live tree, and a stop during startup — through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import free_port, workbench
from tests.real_vllm.conftest import serve_command

pytestmark = [pytest.mark.real_vllm, pytest.mark.usefixtures("vllm_env")]
ORDER = ["starting", "loading", "compiling", "kv_cache", "graph_capture", "api_starting", "ready", "serving"]


def run_json(*args: str, timeout: float = 400) -> tuple[dict, subprocess.CompletedProcess]:
    done = workbench("run", "--headless", "--json", *args, timeout=timeout)
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done


def all_gone(pids: list[int]) -> bool:
    return all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE for p in pids)


def recipe_for(python, model) -> str:
    """The real server as a recipe whose variant is the eager rerun (the isolation matrix)."""
    command = [str(a) for a in serve_command(python, model, 0)]
    command[command.index("--port") + 1] = "{port}"
    return (f"name = \"real-vllm-eager-isolation\"\ncommand = {json.dumps(command)}\nexpect = \"healthy\"\n"
            "[timeouts]\nstartup = 600\nstall = 300\n[variants.eager]\nadd_args = [\"--enforce-eager\"]\n")


def test_healthy_start_then_eager_through_the_isolation_matrix(vllm_python, tiny_model, vllm_version, tmp_path,
                                                               no_leaks) -> None:
    print(f"real vLLM version: {vllm_version}")
    recipe = tmp_path / "real.toml"
    recipe.write_text(recipe_for(vllm_python, tiny_model))
    assert workbench("recipe", "check", str(recipe)).returncode == 0
    done = workbench("replay", str(recipe), "--matrix", "--json", timeout=900)
    matrix = json.loads(done.stdout.strip().splitlines()[-1])
    rows = {row["variant"]: row for row in matrix["runs"]}
    assert set(rows) == {"base", "eager"}, done.stderr[-3000:]
    summaries = {name: json.loads((Path(row["session"]) / "runs" / "r1" / "summary.json").read_text())
                 for name, row in rows.items()}

    graph = summaries["base"]
    assert graph["verdict"] == "healthy", (graph["reason"], done.stderr[-3000:])
    names = [p["name"] for p in graph["phases"]]
    assert names == sorted(names, key=ORDER.index)
    for phase in ("loading", "compiling", "kv_cache", "api_starting", "ready"):
        assert phase in names, names
    assert graph["smoke"]["ok"] and graph["smoke"]["status"] == 200
    titles = [p["name"] for p in graph["tree"]]
    assert "VLLM::EngineCore" in titles and "VLLM::Worker" in titles
    assert all_gone(graph["known_pids"] + [p["pid"] for p in graph["tree"]])

    eager = summaries["eager"]
    assert eager["verdict"] == "healthy", eager["reason"]
    eager_names = [p["name"] for p in eager["phases"]]
    assert "compiling" not in eager_names  # no torch.compile warm-up in eager mode
    assert set(names) - set(eager_names) == {"compiling"}
    assert matrix["conclusion"].startswith("healthy in every variant")
    assert all_gone(eager["known_pids"] + [p["pid"] for p in eager["tree"]])

    # the same two runs through `workbench compare`: the phase only the graph run reached
    report = json.loads(workbench("compare", str(Path(rows["base"]["session"]) / "runs" / "r1"),
                                  str(Path(rows["eager"]["session"]) / "runs" / "r1"), "--json").stdout)
    assert list(report["phases_only_in"].values()) == [["compiling"], []]
    assert report["conclusion"].startswith("both healthy")

    # the same real logs through `workbench analyze`: healthy, and no false root cause
    for row in rows.values():
        analysed = json.loads(workbench("analyze", "--json", row["session"]).stdout)
        for result in analysed if isinstance(analysed, list) else [analysed]:
            assert (result["verdict"], result["root_cause"]) == ("healthy", None), result["findings"]


def test_taken_port_is_named_and_forced_launch_fails_with_port_in_use(vllm_python, tiny_model, no_leaks) -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        refused = workbench("run", "--headless", "--", *serve_command(vllm_python, tiny_model, port))
        assert refused.returncode == 3
        assert f"PID {os.getpid()}" in refused.stderr
        forced, done = run_json("--force", "--", *serve_command(vllm_python, tiny_model, port))
        assert forced["verdict"] == "failed", forced["reason"]
        assert forced["root_cause"]["id"] == "port_in_use", (forced["root_cause"], done.stderr[-2000:])


def test_dump_of_the_live_tree_has_python_frames_for_every_process(vllm_python, tiny_model, no_leaks) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "--headless", "--serve", "--",
         *serve_command(vllm_python, tiny_model, port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 300
        server = None
        for line in proc.stdout:  # type: ignore[union-attr]
            if "workbench: serving" in line:
                break
            if "launched PID" in line:
                server = int(line.split("launched PID ")[1].split(";")[0])
            assert time.monotonic() < deadline, "never became ready"
        assert server is not None
        done = workbench("dump", "--pid", str(server), "--json", timeout=60)
        dumps = json.loads(done.stdout)
        with_frames = [d for d in dumps if d["threads"] and any(t["frames"] for t in d["threads"])]
        names = {d["name"] for d in with_frames}
        assert len(with_frames) >= 3, [(d["name"], d["error"]) for d in dumps]
        assert {"VLLM::EngineCore", "VLLM::Worker"} <= names
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_stop_during_startup_leaves_nothing_and_frees_the_port(vllm_python, tiny_model, no_leaks) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "--headless", "--json", "--",
         *serve_command(vllm_python, tiny_model, port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:  # wait for the engine core (loading / compiling)
        if any(p.name().startswith("VLLM::") for p in psutil.Process(proc.pid).children(recursive=True)):
            break
        time.sleep(0.5)
    else:
        pytest.fail("no engine core appeared")
    tree = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=120)  # a backstop; how fast is bench/'s business
    deadline = time.monotonic() + 15
    while not all_gone(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all_gone(tree)
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", port))  # the port is free again
