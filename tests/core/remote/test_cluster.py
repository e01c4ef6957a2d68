"""A two-node cluster file over two real sshd "nodes" on this machine, in vLLM's `--nnodes 2`
shape (the multi-node simulator): one verdict, the root cause named with its node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.remote.sshd import SshNodes
from tests.helpers import free_port
from workbench.core.remote.cluster import load_cluster
from workbench.core.tomlfile import DataFileError

SIM = "{python} -m workbench.sim.multinode --nnodes {nnodes} --node-rank {node_rank} --master-addr {master_addr} --master-port {master_port}"


def _cluster_file(tmp_path: Path, nodes: SshNodes, worker_flags: str, prepare: str = "") -> Path:
    path = tmp_path / "two-nodes.toml"
    path.write_text(f"""
name = "two-nodes"
ssh_config = "{nodes.config}"
port = {free_port()}
master_port = {free_port()}
master_addr = "127.0.0.1"

[[node]]
name = "head"
ssh = "head"
python = "{sys.executable}"
role = "head"

[[node]]
name = "worker"
ssh = "ssh://worker"
python = "{sys.executable}"
role = "worker"
env = {{ VLLM_HOST_IP = "127.0.0.1" }}

[command]
head = "{SIM} --port {{port}}"
worker = "{SIM} --headless {worker_flags}"
{prepare}""")
    return path


def _run(path: Path, *extra: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "--headless", "--json", "--cluster", str(path), *extra],
                          capture_output=True, text=True, timeout=180)
    assert done.stdout.strip(), done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_failure_on_the_worker_is_the_root_cause_named_with_its_node(ssh_nodes: SshNodes, tmp_path: Path,
                                                                      no_leaks: None) -> None:
    ssh_nodes.add("head")
    ssh_nodes.add("worker")
    # a preparation step on every node first (the shape of `ray start`): it must end before the commands
    step = '[[prepare]]\non = "all"\nrun = "{python} -c \\"print(\'joined as {node}\')\\""\n'
    result = _run(_cluster_file(tmp_path, ssh_nodes, "--fail-on-rank 1", prepare=step))
    for name in ("head", "worker"):
        log = Path(result["session_dir"]) / "nodes" / name / "runs"
        assert f"joined as {name}" in (log / "r1" / "output.log").read_text()
        assert result["nodes"][name]["run"] == "r2"  # the command came after the step
    assert result["verdict"] == "failed"
    assert result["root_cause"]["node"] == "worker"
    assert result["nodes_at_fault"][0] == "worker"  # where it began, whichever node's exit came first
    assert result["root_cause"]["id"] == "nccl_error" and not result["root_cause"]["cascade"]
    # the head failed too, as a consequence: its own root cause is the cascade
    assert result["nodes"]["head"]["root_cause"]["id"] == "engine_init_failed"
    assert set(result["clock_skew"]) == {"head", "worker"}


def test_a_hang_on_one_node_dumps_both_and_names_the_stuck_one(ssh_nodes: SshNodes, tmp_path: Path,
                                                              no_leaks: None) -> None:
    ssh_nodes.add("head")
    ssh_nodes.add("worker")
    result = _run(_cluster_file(tmp_path, ssh_nodes, "--hang-on-rank 1"), "--stall-window", "3")
    assert result["verdict"] == "hung"
    assert result["nodes_at_fault"] == ["worker"]
    for name in ("head", "worker"):
        dumps = result["nodes"][name]["dumps"]
        assert dumps, f"no stacks from {name}"
        assert all(Path(p).exists() for p in dumps)  # copied here from the node
        processes = [p for d in dumps for p in json.loads(Path(d).read_text())["processes"]]
        assert any(p.get("threads") for p in processes), f"{name}: no dump has stacks"


def test_cluster_files_are_strict(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[node]]\nname = "a"\nssh = "a"\nrole = "head"\ncolour = "red"\n[command]\nhead = "x"\n')
    with pytest.raises(DataFileError) as err:
        load_cluster(path)
    assert str(err.value).startswith(f"{path}:5: [colour]")
    path.write_text('[[node]]\nname = "a"\nssh = "a"\nrole = "head"\n[command]\nhead = "serve --rank {rank}"\n')
    with pytest.raises(DataFileError, match=r":6: \[head\] unknown placeholder \{rank\}"):
        load_cluster(path)
    done = subprocess.run([sys.executable, "-m", "workbench", "run", "--headless", "--cluster", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_shipped_cluster_files_load() -> None:
    from tests.helpers import REPO

    files = sorted((REPO / "clusters").glob("*.toml"))
    assert files
    for path in files:
        cluster = load_cluster(path)
        steps = cluster.steps()
        assert steps and steps[0].node.role == "head" or steps[0].until_exit
        assert not any("{" in part for s in steps for part in s.argv), path
