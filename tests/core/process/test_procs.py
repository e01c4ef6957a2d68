"""Stopping a tree for real: a child that ignores SIGINT/SIGTERM, a grandchild that leaves the
process group with setsid(), and the token that still finds it."""

import os
import sys
import textwrap
import time

import psutil

from workbench.core.process.procs import TOKEN_VAR, spawn, stop_tree, token_holders

STUBBORN = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # a grandchild that escapes the process group and the session
    subprocess.Popen([sys.executable, "-c",
        "import os, signal, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print("ready", flush=True)
    time.sleep(600)
    """
)


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _left_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) != group
    except OSError:
        return False


def test_stop_reaches_stubborn_children_and_setsid_grandchildren() -> None:
    token = "test-" + os.urandom(4).hex()
    env = {**os.environ, TOKEN_VAR: token}
    proc = spawn([sys.executable, "-c", STUBBORN], env, None)
    try:
        # the grandchild has left our process group: killpg alone would miss it
        assert _wait_for(lambda: any(_left_group(p.pid, proc.pid) for p in token_holders(token)))
        used, survivors = stop_tree(proc.pid, token, int_timeout=0.5, term_timeout=0.5)
        assert used == "SIGKILL"
        assert survivors == []
        assert token_holders(token) == []
    finally:
        for p in token_holders(token):
            p.kill()


def test_a_polite_child_stops_at_sigint() -> None:
    token = "test-" + os.urandom(4).hex()
    proc = spawn([sys.executable, "-c", "import time; time.sleep(600)"], {**os.environ, TOKEN_VAR: token}, None)
    assert _wait_for(lambda: bool(token_holders(token)))
    used, survivors = stop_tree(proc.pid, token)
    assert (used, survivors) == ("SIGINT", [])


def test_spawned_child_has_its_own_session() -> None:
    proc = spawn([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), None)
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    finally:
        stop_tree(proc.pid, None, 1, 1)
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
