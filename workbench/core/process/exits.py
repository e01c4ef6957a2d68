"""How a process of the tree ended, when it is not our child.

The engine core is a child of vLLM's API server, which reaps it: its wait status never reaches
us. Two ways to learn it anyway, best first:

- the kernel's process-event connector (netlink, NETLINK_CONNECTOR / CN_IDX_PROC) reports every
  exit with its wait status; it needs CAP_NET_ADMIN and the initial network namespace;
- a zombie not yet reaped still shows its wait status in /proc/PID/stat (field 52).

When neither saw it, the status is unknown and is reported as such.
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_EXIT = 0x80000000
NLMSG_DONE = 3
_HEADER = 16 + 20  # nlmsghdr + cn_msg
KEEP = 4096  # exits remembered (the tree's are looked up within seconds)


@dataclass(frozen=True)
class ExitStatus:
    code: int | None  # the exit code when it exited
    signal: int | None  # the signal that ended it
    at: float  # wall-clock time the exit was seen
    source: str  # "kernel" (process events) or "zombie" (/proc/PID/stat)

    def text(self) -> str:
        if self.signal:
            return f"killed by {signal_name(self.signal)}"
        return f"exited with code {self.code}"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def decode_wait_status(status: int) -> tuple[int | None, int | None]:
    """(exit code, signal) of a waitpid(2)-style status."""
    if status & 0x7F:
        return None, status & 0x7F
    return (status >> 8) & 0xFF, None


def zombie_status(pid: int) -> ExitStatus | None:
    """The wait status of a zombie its parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # after "(comm)": field 3 onwards
    if not fields or fields[0] != "Z" or len(fields) < 50:
        return None
    code, sig = decode_wait_status(int(fields[49]))
    return ExitStatus(code, sig, time.time(), "zombie")


class ExitWatcher:
    """Listens to the kernel's process exits (when allowed) and remembers the recent ones."""

    def __init__(self) -> None:
        self._exits: OrderedDict[int, ExitStatus] = OrderedDict()
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self.available = False
        self.error = ""
        self._sock: socket.socket | None = None

    def start(self) -> ExitWatcher:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
            sock.bind((0, CN_IDX_PROC))
            op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
            cn = struct.pack("=IIIIHH", CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
            sock.send(struct.pack("=IHHII", 16 + len(cn), NLMSG_DONE, 0, 0, 0) + cn)
        except OSError as exc:  # no CAP_NET_ADMIN, another network namespace, no connector
            self.error = str(exc)
            return self
        self._sock = sock
        self.available = True
        threading.Thread(target=self._loop, name="wb-exits", daemon=True).start()
        return self

    def _loop(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _HEADER + 16 <= len(data):
            length = struct.unpack_from("=I", data, offset)[0]
            if length < _HEADER:
                return
            what = struct.unpack_from("=I", data, offset + _HEADER)[0]
            if what == PROC_EVENT_EXIT and offset + _HEADER + 32 <= len(data):
                pid, tgid, status, _sig = struct.unpack_from("=IIII", data, offset + _HEADER + 16)
                if pid == tgid:  # the process itself, not one of its threads
                    code, sig = decode_wait_status(status)
                    self._remember(pid, ExitStatus(code, sig, time.time(), "kernel"))
            offset += (length + 3) & ~3

    def _remember(self, pid: int, status: ExitStatus) -> None:
        with self._seen:
            self._exits[pid] = status
            self._exits.move_to_end(pid)
            while len(self._exits) > KEEP:
                self._exits.popitem(last=False)
            self._seen.notify_all()

    def status_of(self, pid: int, wait: float = 0.0) -> ExitStatus | None:
        """How `pid` ended: from the kernel's report (waiting up to `wait` s for it to arrive),
        else from its zombie entry, else None (not known)."""
        deadline = time.monotonic() + wait
        with self._seen:
            while pid not in self._exits and self.available:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._seen.wait(left)
            found = self._exits.get(pid)
        return found or zombie_status(pid)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


_shared: ExitWatcher | None = None
_shared_lock = threading.Lock()


def exit_watcher() -> ExitWatcher:
    """One listener per process, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ExitWatcher().start()
        return _shared


def process_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return False
    state = raw[raw.rfind(b")") + 2:raw.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"")


__all__ = ["ExitStatus", "ExitWatcher", "exit_watcher", "process_alive", "zombie_status", "signal_name",
           "decode_wait_status"]
