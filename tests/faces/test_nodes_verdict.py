"""One verdict across nodes, from each node's run (the judging alone; the real nodes are in
tests/core/remote)."""

from __future__ import annotations

from types import SimpleNamespace

from workbench.faces.nodes import cluster_verdict


def _run(verdict=None, returncode=None, alive=True, stopping=False, reason="r"):  # noqa: ANN001, ANN202
    return SimpleNamespace(verdict=verdict, returncode=returncode, exit_signal=None, alive=alive,
                           stopping=stopping, verdict_reason=reason)


def test_the_whole_waits_then_follows_the_worst_node() -> None:
    assert cluster_verdict({"head": _run(), "worker": _run()}, "head") is None
    healthy = cluster_verdict({"head": _run("healthy"), "worker": _run()}, "head")
    assert healthy is not None and healthy[0] == "healthy"
    failed = cluster_verdict({"head": _run("healthy"), "worker": _run("failed", 1, alive=False)}, "head")
    assert failed is not None and failed[0] == "failed" and failed[2] == ["worker"]


def test_a_check_that_ends_cleanly_everywhere_is_exited_and_a_nonzero_exit_fails() -> None:
    clean = {"head": _run("exited", 0, alive=False), "worker": _run("exited", 0, alive=False)}
    assert cluster_verdict(clean, "head")[:2] == ("exited", "every node's command ended with code 0")
    clean["worker"] = _run("exited", 1, alive=False)
    assert cluster_verdict(clean, "head")[0] == "failed"


def test_in_a_hang_the_node_silent_the_longest_is_named() -> None:
    runs = {"head": _run("hung"), "worker": _run()}
    verdict, reason, stuck = cluster_verdict(runs, "head", {"head": 100.0, "worker": 40.0})
    assert (verdict, stuck) == ("hung", ["worker"]) and "head waiting" in reason
