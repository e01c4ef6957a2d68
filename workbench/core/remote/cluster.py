"""Cluster files (`clusters/*.toml`): the nodes of a multi-node run and what each runs.

    name = "two-hosts"
    ssh_config = "~/.ssh/config"        # optional: another ssh config for every node
    port = 8000                         # {port}
    master_port = 29500                 # {master_port}; {master_addr} is the head's host
    [[node]]
    name = "head"
    ssh = "ssh://me@10.0.0.1"           # ssh://[user@]host[:port], or a Host of the ssh config
    python = "/opt/venv/bin/python"     # the node's python with the workbench installed
    role = "head"                       # head (exactly one) | worker
    env = { VLLM_HOST_IP = "10.0.0.1" }
    [command]
    head = "vllm serve M --nnodes {nnodes} --node-rank {node_rank} --master-addr {master_addr}"
    worker = "vllm serve M --headless --nnodes {nnodes} --node-rank {node_rank} --master-addr {master_addr}"
    [[prepare]]                         # optional, run to completion in order first (Ray)
    on = "head"                         # head | workers | all
    run = "ray start --head --port 6379"

Start order: the preparation steps in order, then the head's command, then the workers'.
Strict like recipes: an unknown key, a wrong type or an unknown placeholder is one line with
file:line:[key].
"""

from __future__ import annotations

import os
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.tomlfile import DataFileError, load_toml, locate

TOP_KEYS = {"name", "description", "ssh_config", "port", "master_port", "master_addr", "node", "command", "prepare"}
NODE_KEYS = {"name", "ssh", "python", "role", "env"}
PLACEHOLDERS = {"node_rank", "nnodes", "master_addr", "master_port", "port", "python", "node"}
ROLES = ("head", "worker")


@dataclass
class ClusterNode:
    name: str
    ssh: str
    python: str = "python3"
    role: str = "worker"
    env: dict[str, str] = field(default_factory=dict)
    rank: int = 0


@dataclass
class Step:
    node: ClusterNode
    argv: list[str]
    until_exit: bool


@dataclass
class Cluster:
    path: str
    name: str
    nodes: list[ClusterNode]
    commands: dict[str, str]
    prepare: list[tuple[str, str]]
    ssh_config: str | None = None
    port: int = 8000
    master_port: int = 29500
    master_addr: str | None = None

    @property
    def head(self) -> ClusterNode:
        return next(n for n in self.nodes if n.role == "head")

    def fill(self, template: str, node: ClusterNode) -> list[str]:
        from workbench.core.remote.ssh import parse_target

        values = {"node_rank": node.rank, "nnodes": len(self.nodes), "port": self.port, "node": node.name,
                  "master_addr": self.master_addr or parse_target(self.head.ssh).host,
                  "master_port": self.master_port, "python": node.python}
        return shlex.split(template.format(**values))

    def steps(self) -> list[Step]:
        """Everything to start, in order: preparation, then the head, then the workers."""
        out = []
        for on, run in self.prepare:
            for node in self.nodes:
                if on == "all" or (on == "head") == (node.role == "head"):
                    out.append(Step(node, self.fill(run, node), True))
        ordered = [self.head] + [n for n in self.nodes if n.role != "head"]
        for node in ordered:
            if node.role not in self.commands:
                continue  # Ray: a worker node only joins the Ray cluster (a [[prepare]] step)
            out.append(Step(node, self.fill(self.commands[node.role], node), False))
        return out


def _err(path: str, text: str, message: str, key: str, array: str | None = None, index: int = 0) -> DataFileError:
    return DataFileError(path, message, locate(text, key, array, index), key)


def _check_template(path: str, text: str, template: Any, key: str, array: str | None = None, index: int = 0) -> str:
    if not isinstance(template, str) or not template.strip():
        raise _err(path, text, f"{key} must be a non-empty command string", key, array, index)
    for _lit, name, _spec, _conv in string.Formatter().parse(template):
        if name is not None and name not in PLACEHOLDERS:
            raise _err(path, text, f"unknown placeholder {{{name}}} in {key} (known: {', '.join(sorted(PLACEHOLDERS))})",
                       key, array, index)
    return template


def load_cluster(path: Path | str) -> Cluster:
    path = str(path)
    data, text = load_toml(path)
    for key in data:
        if key not in TOP_KEYS:
            raise _err(path, text, f"unknown key {key!r} (known: {', '.join(sorted(TOP_KEYS))})", key)
    raw_nodes = data.get("node")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise DataFileError(path, "needs at least one [[node]]", None, "node")
    nodes: list[ClusterNode] = []
    for index, raw in enumerate(raw_nodes):
        for key in raw:
            if key not in NODE_KEYS:
                raise _err(path, text, f"node {index + 1}: unknown key {key!r} (known: {', '.join(sorted(NODE_KEYS))})",
                           key, "node", index)
        for key in ("name", "ssh"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise _err(path, text, f"node {index + 1}: {key} must be a non-empty string", key, "node", index)
        role = raw.get("role", "worker")
        if role not in ROLES:
            raise _err(path, text, f"node {raw['name']}: role must be head or worker, not {role!r}", "role", "node", index)
        env = raw.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise _err(path, text, f"node {raw['name']}: env must be a table of strings", "env", "node", index)
        python = raw.get("python", "python3")
        if not isinstance(python, str):
            raise _err(path, text, f"node {raw['name']}: python must be a string", "python", "node", index)
        try:
            from workbench.core.remote.ssh import parse_target

            parse_target(raw["ssh"])
        except ValueError as exc:
            raise _err(path, text, str(exc), "ssh", "node", index) from None
        nodes.append(ClusterNode(raw["name"], raw["ssh"], python, role, dict(env)))  # ~ is the node's home
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise _err(path, text, "node names must be unique", "name", "node", 0)
    heads = [n for n in nodes if n.role == "head"]
    if len(heads) != 1:
        raise DataFileError(path, f"needs exactly one node with role = \"head\" (found {len(heads)})", None, "role")
    for rank, node in enumerate([heads[0]] + [n for n in nodes if n.role != "head"]):
        node.rank = rank
    commands = data.get("command")
    if not isinstance(commands, dict):
        raise DataFileError(path, "needs a [command] table with head = and worker =", None, "command")
    for key in commands:
        if key not in ROLES:
            raise _err(path, text, f"unknown key {key!r} in [command] (known: head, worker)", key)
    _check_template(path, text, commands.get("head"), "head")
    if "worker" in commands:
        _check_template(path, text, commands["worker"], "worker")
    prepare: list[tuple[str, str]] = []
    for index, step in enumerate(data.get("prepare", [])):
        on = step.get("on", "all")
        if on not in ("head", "workers", "all") or set(step) - {"on", "run"}:
            raise _err(path, text, "a [[prepare]] step has on = head|workers|all and run = \"...\"", "on", "prepare", index)
        prepare.append((on, _check_template(path, text, step.get("run"), "run", "prepare", index)))
    if any(n.role == "worker" for n in nodes) and "worker" not in commands \
            and not any(on in ("workers", "all") for on, _run in prepare):
        raise DataFileError(path, "worker nodes need [command] worker = (or a [[prepare]] step on workers)", None, "command")
    for key in ("port", "master_port"):
        if key in data and (not isinstance(data[key], int) or not 0 < data[key] < 65536):
            raise _err(path, text, f"{key} must be a port number", key)
    ssh_config = data.get("ssh_config")
    if ssh_config is not None:
        ssh_config = os.path.expanduser(str(ssh_config))
        if not os.path.isabs(ssh_config):
            ssh_config = str(Path(path).resolve().parent / ssh_config)
    return Cluster(path, str(data.get("name", Path(path).stem)), nodes, dict(commands), prepare, ssh_config,
                   int(data.get("port", 8000)), int(data.get("master_port", 29500)), data.get("master_addr"))
