"""`workbench --on HOST -- CMD`: the TUI driven by a node's engine over a real sshd (Pilot)."""

from __future__ import annotations

import sys

import pytest

from tests.core.remote.conftest import ssh_nodes  # noqa: F401 - the fixture
from tests.core.remote.sshd import SshNodes
from tests.helpers import wait_until
from tests.ui.test_app import SIZE, wait_for
from workbench.core.record.session import Session
from workbench.core.remote.node_engine import NodeSpec, connect_node
from workbench.core.remote.ssh import parse_target
from workbench.ui.remote import make_remote_app


@pytest.mark.asyncio
async def test_the_tui_on_a_remote_node(ssh_nodes: SshNodes, port: int, tmp_path, no_leaks) -> None:  # noqa: F811
    ssh_nodes.add("node1")
    node = NodeSpec("node1", parse_target("node1"), sys.executable, str(ssh_nodes.config))
    session = Session(tmp_path / "session" / "nodes" / "node1", name="node1")
    engine = connect_node(node, session)
    try:
        run = engine.launch([sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port), "--time-scale", "0.05"])
        app = make_remote_app(engine, "node1 over ssh")
        async with app.run_test(size=SIZE):
            await wait_for(lambda: app.current_run() is not None, what="the node's run in the pane")
            await wait_for(lambda: app.current_run().verdict == "healthy", what="healthy on the node")
            await wait_for(lambda: app.log_view.rows > 20, what="the node's log, streamed here")
            assert app.current_run().diagnosis.phases.reached("ready")  # recognised on this side
    finally:
        engine.shutdown()
    assert run.exited.is_set()  # the face's end stopped the node's run
    wait_until(lambda: (session.dir / "runs" / "r1" / "output.log").stat().st_size > 0, what="the log kept here")


@pytest.mark.asyncio
async def test_the_tui_on_a_cluster_has_a_pane_per_node_and_dumps_every_node(ssh_nodes: SshNodes, port: int,  # noqa: F811
                                                                              tmp_path, no_leaks) -> None:
    from tests.helpers import free_port
    from workbench.core.remote.cluster_engine import ClusterEngine

    engines = {}
    for name in ("head", "worker"):
        ssh_nodes.add(name)
        spec = NodeSpec(name, parse_target(name), sys.executable, str(ssh_nodes.config))
        engines[name] = connect_node(spec, Session(tmp_path / "s" / "nodes" / name, name=name))
    cluster = ClusterEngine(engines)
    sim = [sys.executable, "-m", "workbench.sim.multinode", "--nnodes", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port())]
    try:
        cluster.launch_on("head", [*sim, "--node-rank", "0", "--port", str(port)])
        cluster.launch_on("worker", [*sim, "--node-rank", "1", "--headless"])
        app = make_remote_app(cluster, "two-nodes", "compare")
        async with app.run_test(size=SIZE) as pilot:
            assert sorted(app.pane_runs) == ["head/r1", "worker/r1"]
            await wait_for(lambda: app.log_view.rows > 5, what="a node's log in its pane")
            await pilot.press("d")  # the dump key (keymap.toml) on the focused node's run: every node dumped
            await wait_for(lambda: set(cluster.dumps) == {"head/r1", "worker/r1"}, timeout=60,
                           what="one dump key dumps both nodes")
            await wait_for(lambda: cluster.runs["head/r1"].verdict == "healthy", what="the head healthy")
    finally:
        cluster.shutdown()
    assert all(run.exited.is_set() for run in cluster.runs.values())
