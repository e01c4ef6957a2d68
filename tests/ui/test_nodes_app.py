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
