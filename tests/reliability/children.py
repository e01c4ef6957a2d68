"""Child programs the reliability tests supervise, and helpers to watch what is left of them."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil

MARKER = "WORKBENCH_RELIABILITY_MARKER"
# The deadline of every wait in these tests: only a backstop that tells "never" from "slowly"
# (the suite must hold with every core kept busy: bench/stress.sh), never a measure of speed.
BACKSTOP = 120.0

# Writes a file to stdout in random-sized chunks, records after each write how many bytes the
# write returned (so a test knows what was written before anything was killed), then dies
# mid-line with SIGKILL unless told to linger.
WRITER = r"""
import os, random, signal, sys, time
data = open(sys.argv[1], "rb").read()
count = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o600)
linger = len(sys.argv) > 3 and sys.argv[3] == "linger"
rng = random.Random(7)
pos = 0
while pos < len(data):
    size = rng.choice((1, 7, 100, 4096, 65536))
    pos += os.write(1, data[pos:pos + size])
    os.pwrite(count, str(pos).encode().ljust(20), 0)
    if linger and pos > len(data) // 2:
        time.sleep(0.002)  # slow down so a kill lands mid-stream
while linger:
    time.sleep(1)
os.kill(os.getpid(), signal.SIGKILL)
"""

# The tree of the no-orphan tests: the root listens on the port and ignores SIGTERM; its child
# ignores SIGTERM too; the grandchild calls setsid() (it leaves the process group and the
# session), ignores SIGTERM and inherits the listening socket, so the port stays taken until
# the last of them is gone. argv: PORT [exit GO_FILE] — with "exit" the root leaves once the
# test has seen the whole tree up and created GO_FILE (a handshake: a fixed delay would let a
# slow machine see the root gone before the grandchild ever started).
TREE = r"""
import os, signal, socket, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
port = int(sys.argv[1])
if sys.argv[2:3] == ["grandchild"]:
    os.setsid()
    fd = int(sys.argv[3])
    print("grandchild up", flush=True)
    time.sleep(600)
elif sys.argv[2:3] == ["child"]:
    fd = int(sys.argv[3])
    subprocess.Popen([sys.executable, __file__, str(port), "grandchild", str(fd)], pass_fds=(fd,))
    time.sleep(600)
else:
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen()
    fd = srv.fileno()
    subprocess.Popen([sys.executable, __file__, str(port), "child", str(fd)], pass_fds=(fd,))
    print("root up", flush=True)
    if sys.argv[2:3] == ["exit"]:
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.05)
        os._exit(0)
    time.sleep(600)
"""


def nasty_stream(size: int, seed: int = 1) -> bytes:
    """Random bytes salted with everything a log can hold: invalid UTF-8, CR, NUL, escape
    sequences, long lines; it ends mid-line (no final newline)."""
    rng = random.Random(seed)
    salts = [b"\r", b"\r\n", b"\n", b"\x00", b"\xff\xfe", b"\xc3", b"\x1b[2J", b"\x1b]52;c;aGk=\x07",
             b"\x1bP1$r\x1b\\", b"\x9b31m", "\u202e".encode(), b"progress 50%\r", b"\x04", b"\x03"]
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.5:
            out += rng.choice(salts)
        else:
            out += rng.randbytes(rng.randint(1, 300))
    out = out[:size]
    return bytes(out.rstrip(b"\n")) + b"no newline at the end"


def marked(marker: str) -> list[psutil.Process]:
    """Live (not zombie) processes carrying MARKER=marker in their environment."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kill_marked(marker: str) -> None:
    for proc in marked(marker):
        try:
            proc.kill()
        except psutil.Error:
            pass


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def session_logs(state_dir: Path) -> list[Path]:
    return sorted(state_dir.glob("sessions/*/runs/*/output.log"))


def write_script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    os.chmod(path, 0o700)
    return path
