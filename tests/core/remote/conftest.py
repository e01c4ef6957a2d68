from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.remote.sshd import SshNodes, need_ssh


@pytest.fixture
def ssh_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshNodes]:
    need_ssh()
    nodes = SshNodes(Path(tmp_path_factory.mktemp("ssh")))
    try:
        yield nodes
    finally:
        nodes.close()


@pytest.fixture
def node_python() -> str:
    """The node's python with the workbench importable: this test's own interpreter."""
    return sys.executable
