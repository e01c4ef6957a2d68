"""Stopping a tree for real: a child that ignores SIGINT/SIGTERM, a grandchild that leaves the
process group with setsid(), and the token that still finds it."""

import os
import signal
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

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


def _ignored(pid: int, sig: int) -> bool:
    """Whether the process ignores `sig` (its SigIgn mask in /proc)."""
    with open(f"/proc/{pid}/status") as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    return bool(mask & (1 << (sig - 1)))


def test_a_child_does_not_inherit_our_ignored_signals() -> None:
    """A workbench started with `&` or nohup has SIGINT/SIGHUP ignored; its server must not:
    an ignored signal survives exec, and the polite stop would need SIGTERM."""
    token = "test-" + os.urandom(4).hex()
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    # spawned from a thread, as the engine does; the thread must outlive the child
    # (PR_SET_PDEATHSIG fires when the forking thread ends)
    pool = ThreadPoolExecutor(1)
    try:
        proc = pool.submit(spawn, [sys.executable, "-c", "import time; time.sleep(600)"],
                           {**os.environ, TOKEN_VAR: token}, None).result()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    try:
        assert _wait_for(lambda: bool(token_holders(token)))
        assert not _ignored(proc.pid, signal.SIGINT) and not _ignored(proc.pid, signal.SIGHUP)
        assert stop_tree(proc.pid, token) == ("SIGINT", [])
    finally:
        for p in token_holders(token):
            p.kill()
        pool.shutdown()


COUNTER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    path = sys.argv[1]
    if sys.argv[2:] == ["escaped"]:
        os.setsid()
    def count(*_):
        with open(path, "a") as out:
            out.write("INT\\n")
    signal.signal(signal.SIGINT, count)
    if sys.argv[2:] != ["escaped"]:
        subprocess.Popen([sys.executable, __file__, path + ".escaped", "escaped"])
    open(path + ".up", "w").close()
    while True:
        time.sleep(0.01)  # a busy-ish loop, so a signal is handled as soon as it lands
    """
)


def test_each_process_gets_each_signal_once(tmp_path) -> None:
    """The group is signalled with killpg and whoever left it on its own, never both: a Python
    server's SIGINT handler run twice starts its shutdown twice."""
    script = tmp_path / "counter.py"
    script.write_text(COUNTER)
    root_count = tmp_path / "root"
    token = "test-" + os.urandom(4).hex()
    proc = spawn([sys.executable, str(script), str(root_count)], {**os.environ, TOKEN_VAR: token}, None)
    try:
        assert _wait_for(lambda: (tmp_path / "root.up").exists() and (tmp_path / "root.escaped.up").exists(), 60)
        used, survivors = stop_tree(proc.pid, token, int_timeout=1.0, term_timeout=5.0)
        assert (used, survivors) == ("SIGTERM", [])
        assert root_count.read_text() == "INT\n"
        assert (tmp_path / "root.escaped").read_text() == "INT\n"
    finally:
        for p in token_holders(token):
            p.kill()
