"""A node's own preflight: interface variables against the node's real addresses, versions."""

from __future__ import annotations

from workbench.core.remote.nodecheck import (
    interface_problems,
    local_addresses,
    node_preflight,
    version_mismatches,
)

NODE = {"lo": ["127.0.0.1", "::1"], "eth0": ["10.0.0.2"], "ib0": ["192.168.7.2"]}


def test_address_variables_must_name_an_address_of_this_node() -> None:
    assert interface_problems({"VLLM_HOST_IP": "10.0.0.2", "HCCL_IF_IP": "192.168.7.2"}, NODE) == []
    [problem] = interface_problems({"VLLM_HOST_IP": "10.0.0.1"}, NODE)
    assert problem.startswith("VLLM_HOST_IP=10.0.0.1 is not an address of this node")


def test_interface_variables_must_name_an_interface_of_this_node() -> None:
    assert interface_problems({"NCCL_SOCKET_IFNAME": "eth", "GLOO_SOCKET_IFNAME": "=ib0"}, NODE) == []
    assert interface_problems({"NCCL_SOCKET_IFNAME": "^docker,lo"}, NODE) == []  # exclusions name nothing
    [problem] = interface_problems({"GLOO_SOCKET_IFNAME": "enp1s0"}, NODE)
    assert "no interface 'enp1s0'" in problem
    assert interface_problems({"NCCL_SOCKET_IFNAME": "=eth"}, NODE)  # exact: eth0 is not eth


def test_the_real_node_and_versions_across_nodes() -> None:
    assert "lo" in local_addresses() or local_addresses()
    answer = node_preflight([], {"VLLM_HOST_IP": "203.0.113.9"}, None)
    assert any("VLLM_HOST_IP=203.0.113.9" in p for p in answer["problems"])
    assert version_mismatches({"a": {"vllm": "0.11.0", "torch": "2.8"}, "b": {"vllm": "0.11.0", "torch": "2.8"}}) == []
    [line] = version_mismatches({"a": {"vllm": "0.11.0"}, "b": {"vllm": "0.10.1"}})
    assert line == "vllm differs across nodes: a 0.11.0, b 0.10.1"
