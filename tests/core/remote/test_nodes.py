"""One remote node over a real sshd: `run --headless --on`, and the link killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.core.remote.sshd import SshNodes
from tests.helpers import wait_until


def _on(nodes: SshNodes, node: str, *command: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "workbench", "run", "--headless", "--json", "--on", f"ssh://{node}",
            "--ssh-config", str(nodes.config), "--python", sys.executable, *extra, "--", *command]


def _with_port(port: int) -> list[psutil.Process]:
    """Processes of this machine whose command line names the test's port (the node's server,
    not the face that launched it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if str(port) in cmdline and "--on" not in cmdline and proc.pid != os.getpid():
            found.append(proc)
    return found


def _port_free(port: int) -> bool:
    return not any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in psutil.net_connections("tcp"))


def test_run_on_a_node_healthy_with_the_session_here(ssh_nodes: SshNodes, port: int, tmp_path: Path, no_leaks: None) -> None:
    ssh_nodes.add("node1")
    session = tmp_path / "session"
    done = subprocess.run(_on(ssh_nodes, "node1", sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port),
                              "--time-scale", "0.05", extra=("--session-dir", str(session))),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["verdict"] == "healthy"
    node = result["nodes"]["node1"]
    assert [p["name"] for p in node["phases"]][-1] == "serving"
    # the session is on this side: events, the node's raw log, the result
    log = session / "nodes" / "node1" / "runs" / "r1" / "output.log"
    assert "Application startup complete." in log.read_text()
    assert (session / "result.json").exists() and (session / "nodes" / "node1" / "events.jsonl").stat().st_size > 0
    assert abs(result["clock_skew"]["node1"]) < 5.0
    # nothing left on the node: its temp session removed, no server, the port free
    assert node["node_session_dir"] and not Path(node["node_session_dir"]).exists()
    wait_until(lambda: not _with_port(port) and _port_free(port), timeout=30, what="the node's server gone")


def test_killing_the_ssh_link_stops_the_nodes_runs(ssh_nodes: SshNodes, port: int, no_leaks: None) -> None:
    ssh_nodes.add("node1")
    face = subprocess.Popen(_on(ssh_nodes, "node1", sys.executable, "-m", "workbench.sim", "hang", "--port", str(port),
                                "--time-scale", "0.05", extra=("--stall-window", "600")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the server runs on the node (under sshd, not under our face)
        wait_until(lambda: any("workbench.sim" in " ".join(p.cmdline()) for p in _with_port(port)), timeout=60,
                   what="the simulator running on the node")
        server = next(p for p in _with_port(port) if "workbench.sim" in " ".join(p.cmdline()))
        assert face.pid not in [a.pid for a in server.parents()]
        ssh = [c for c in psutil.Process(face.pid).children(recursive=True) if c.name() == "ssh"]
        assert ssh, "the face reaches the node through the ssh client"
        for proc in ssh:
            proc.send_signal(signal.SIGKILL)  # the link drops, as when a laptop leaves the network
        wait_until(lambda: not _with_port(port) and _port_free(port), timeout=60,
                   what="the node's runs stopped after the link dropped")
        out, err = face.communicate(timeout=60)
        assert "lost the SSH connection to node1" in json.loads(out)["reason"], err[-2000:]
    finally:
        if face.poll() is None:
            face.kill()
            face.wait()


def test_a_node_without_the_workbench_is_one_clear_line(ssh_nodes: SshNodes, tmp_path: Path) -> None:
    ssh_nodes.add("bare")
    bare = tmp_path / "python-without-workbench"
    bare.write_text("#!/bin/sh\nexec /usr/bin/python3 -I \"$@\"\n")  # a Python that has never seen it
    bare.chmod(0o755)
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "--headless", "--on", "ssh://bare",
                           "--ssh-config", str(ssh_nodes.config), "--python", str(bare), "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "workbench: error: workbench is not installed on bare: pip install vllm-workbench there, "
        "or set python = ... in the cluster file"]


def test_the_nodes_preflight_refuses_an_address_it_does_not_have(ssh_nodes: SshNodes, port: int) -> None:
    ssh_nodes.add("node1")
    done = subprocess.run(_on(ssh_nodes, "node1", sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port),
                              extra=("--env", "VLLM_HOST_IP=203.0.113.9")), capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr[-2000:]  # checked on the node, against the node's addresses
    assert "workbench: error: node1: VLLM_HOST_IP=203.0.113.9 is not an address of this node" in done.stderr
    assert not _with_port(port)  # nothing was launched
