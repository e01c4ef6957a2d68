"""If the workbench itself is SIGKILLed, the reaper still takes the supervised tree down."""

import os
import subprocess
import sys
import textwrap
import time

from workbench.core.process.procs import token_holders

HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.core.engine.engine import Engine
    from workbench.core.record.session import Session
    from pathlib import Path
    engine = Engine(Session(Path(sys.argv[1])))
    # the child is a session leader already; its grandchild leaves the process group with setsid()
    child = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\ntime.sleep(600)"
    run = engine.launch([sys.executable, "-c", child])
    print(engine.session.token, flush=True)
    time.sleep(600)
    """
)


def session_leaders(token: str) -> list[int]:
    """Holders of the token that lead their own session (the pty child, its setsid() grandchild, the pump)."""
    leaders = []
    for proc in token_holders(token):
        try:
            if os.getsid(proc.pid) == proc.pid:
                leaders.append(proc.pid)
        except OSError:
            continue
    return leaders


def test_sigkill_of_the_workbench_leaves_no_child(tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True)
    try:
        token = holder.stdout.readline().strip()
        assert token
        deadline = time.monotonic() + 10
        while len(session_leaders(token)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(session_leaders(token)) >= 2, "the child and its setsid() grandchild never started"
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 15
        while token_holders(token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert token_holders(token) == []
    finally:
        holder.kill()
