"""Ascend plog as a second log source: the tree's per-PID files are tailed and recognised."""

from __future__ import annotations

import sys

from workbench.core.engine.engine import Engine
from workbench.core.logs.plog import PlogTailer, plog_dirs
from workbench.core.record.session import Session

CHILD = """
import os, sys, time
plog = os.path.join(os.environ["ASCEND_PROCESS_LOG_PATH"], "debug", "plog")
os.makedirs(plog, exist_ok=True)
with open(os.path.join(plog, f"plog-{os.getpid()}_20261124101500123.log"), "w") as f:
    f.write("[INFO] HCCL(1234,python):2026-11-24-10:15:00.123.456 [hccl_comm.cc:100] init start\\n")
    f.flush()
    time.sleep(0.3)
    f.write("[ERROR] HCCL(1234,python):2026-11-24-10:15:01.001.002 [socket.cc:200] EJ0003: Failed to bind the IP port. "
            "Reason: The IP address and port have been bound already.\\n")
with open(os.path.join(plog, "plog-1_20261124101500123.log"), "w") as f:  # another process's plog
    f.write("[ERROR] not ours\\n")
print("server output: starting", flush=True)
time.sleep(1.2)
sys.exit(1)
"""


def test_plog_of_the_tree_is_tailed_and_recognised(tmp_path, no_leaks) -> None:
    engine = Engine(Session(tmp_path / "session"))
    try:
        run = engine.launch([sys.executable, "-c", CHILD], {"ASCEND_PROCESS_LOG_PATH": str(tmp_path / "ascend")})
        run.reader_done.wait(timeout=30)
        assert run.plog_store is not None
        lines = run.plog_store.lines(0, len(run.plog_store))
        assert len(lines) == 2 and all(line.startswith(f"[plog {run.pid}] ") for line in lines)
        assert not any("not ours" in line for line in lines)
        ids = [f.id for f in run.plog_findings()]
        assert "hccl_bind" in ids
        assert run.root_cause() is not None and run.root_cause().id == "hccl_bind"  # the output named none
        assert run.summary()["plog"]["lines"] == 2
        assert (run.dir / "plog.log").read_bytes().count(b"\n") == 2
    finally:
        engine.shutdown()


def test_partial_lines_wait_for_their_newline(tmp_path) -> None:
    directory = tmp_path / "plog"
    directory.mkdir()
    got: list[bytes] = []
    tailer = PlogTailer([directory], lambda: {42}, got.append)
    path = directory / "plog-42_1.log"
    path.write_bytes(b"first line\nsecond ha")
    tailer.poll()
    with path.open("ab") as handle:
        handle.write(b"lf\n")
    tailer.poll()
    assert b"".join(got) == b"[plog 42] first line\n[plog 42] second half\n"


def test_plog_dirs_follow_the_environment(tmp_path) -> None:
    dirs = plog_dirs({"ASCEND_PROCESS_LOG_PATH": str(tmp_path), "HOME": "/home/someone"})
    assert dirs[0] == tmp_path / "debug" / "plog" and tmp_path / "run" / "plog" in dirs
    assert any(str(d).startswith("/home/someone/ascend/log") for d in dirs)
