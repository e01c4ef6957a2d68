"""Real py-spy on a real child: frames come back, and no target is left stopped."""

import subprocess
import sys
import time

import psutil
import pytest

from tests.helpers import wait_until, workbench
from workbench.core.probes.stacks import PTRACE_HELP, dump_tree, py_spy_path, unmoved_threads

CHILD = "import time\ndef wait_for_all_reduce():\n    while True: time.sleep(0.1)\nprint('go', flush=True)\nwait_for_all_reduce()\n"


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.skipif(py_spy_path() is None, reason="py-spy not installed")
def test_dump_finds_the_frame_and_two_dumps_show_it_did_not_move(sleeper) -> None:
    first = dump_tree([sleeper.pid])
    assert first[0].ok, first[0].error
    names = [f.name for t in first[0].threads for f in t.frames]
    assert "wait_for_all_reduce" in names
    time.sleep(0.3)
    second = dump_tree([sleeper.pid])
    assert psutil.Process(sleeper.pid).status() != psutil.STATUS_STOPPED
    assert unmoved_threads(first, second)  # same thread, same frames: it did not move
    assert any(f.name == "wait_for_all_reduce" for t in second[0].threads for f in t.frames)


def test_a_vanished_process_is_an_error_not_a_crash() -> None:
    dumps = dump_tree([2**22 + 12345])
    assert dumps[0].error


@pytest.mark.skipif(py_spy_path() is None, reason="py-spy not installed")
def test_a_stopped_process_is_dumped_as_stopped_and_left_stopped(sleeper) -> None:
    import os
    import signal

    os.kill(sleeper.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: psutil.Process(sleeper.pid).status() == psutil.STATUS_STOPPED, what="stopped")
        dump = dump_tree([sleeper.pid])[0]
        assert dump.state == "T" and dump.stopped
        assert f"PID {sleeper.pid} (python" in dump.text()
        assert "is stopped (state T): something sent SIGSTOP or a debugger holds it" in dump.text()
        assert PTRACE_HELP not in dump.text()  # not a permission problem
        assert psutil.Process(sleeper.pid).status() == psutil.STATUS_STOPPED  # never resumed silently
        # resuming is explicit: `workbench dump --resume-stopped`
        done = workbench("dump", "--pid", str(sleeper.pid), "--resume-stopped")
        assert f"resumed PID {sleeper.pid} (SIGCONT)" in done.stderr, done.stderr
        wait_until(lambda: psutil.Process(sleeper.pid).status() != psutil.STATUS_STOPPED, what="resumed")
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
