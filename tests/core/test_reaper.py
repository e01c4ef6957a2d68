"""If the workbench itself is SIGKILLed, the reaper still takes the supervised tree down."""

import subprocess
import sys
import textwrap
import time

from workbench.core.procs import token_holders

HOLDER = textwrap.dedent(
    """
    import sys, time
    from workbench.core.engine import Engine
    from workbench.core.session import Session
    from pathlib import Path
    engine = Engine(Session(Path(sys.argv[1])))
    run = engine.launch([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"])
    print(engine.session.token, flush=True)
    time.sleep(600)
    """
)


def test_sigkill_of_the_workbench_leaves_no_child(tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "s")], stdout=subprocess.PIPE, text=True)
    try:
        token = holder.stdout.readline().strip()
        assert token
        deadline = time.monotonic() + 10
        while not token_holders(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert token_holders(token), "the child never started"
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 15
        while token_holders(token) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert token_holders(token) == []
    finally:
        holder.kill()
