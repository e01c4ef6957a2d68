"""The pump: a tiny process per run that copies the child's pty to the run's log file.

Why a process and not a thread: vLLM must never block on us. The pty buffer holds a few KiB,
so a reader that shares a GIL with the recognisers and the UI makes a flooding child wait.
The pump does nothing but `read` and `write`, like `script`, and the engine tails the file at
its own pace — bytes are on disk before anything looks at them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

READ_SIZE = 64 * 1024


def start_pump(master_fd: int, log_path: str, env: dict[str, str]) -> subprocess.Popen:
    """Start a pump reading `master_fd` into `log_path` (created 0600 by the caller).

    `cat` does exactly this in C with large buffers; it ends on EIO when the child's side of
    the pty closes. Where there is no `cat`, a Python loop does the same.
    """
    cat = shutil.which("cat")
    if cat is not None:
        out = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            return subprocess.Popen(
                [cat], stdin=master_fd, stdout=out, stderr=subprocess.DEVNULL,
                start_new_session=True, env=env, close_fds=True,
            )
        finally:
            os.close(out)
    return subprocess.Popen(
        [sys.executable, "-S", "-c", "import workbench.core.process.pump as p; p.main()", str(master_fd), log_path],
        pass_fds=(master_fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # terminal signals (Ctrl-C) must not stop the copying
        env={**env, "PYTHONPATH": _package_root()},
    )


def _package_root() -> str:
    # the folder holding the workbench package: workbench/core/process/pump.py -> four levels up
    return str(Path(__file__).resolve().parents[3])


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # we end when the child's side of the pty closes
    master = int(sys.argv[1])
    out = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    read, write = os.read, os.write
    while True:
        try:
            data = read(master, READ_SIZE)
        except OSError:  # EIO: every writer of the pty is gone
            break
        if not data:
            break
        while data:
            data = data[write(out, data):]
    os.close(out)
