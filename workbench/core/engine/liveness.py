"""Is the tree still alive and able to move? Which of its processes went away, and how; which is
stopped (T, t) or stuck in the kernel (D), and since when.

What can be known: a process of the tree is gone (its /proc entry is gone or a zombie); how it
ended comes from the kernel's exit report or its zombie entry (core/process/exits.py) — when
neither saw it (its parent reaped it first and we may not listen to process events), the status
is reported as not visible rather than guessed. vLLM sometimes says it itself ("exit code: -9");
`signal_from_log` reads that.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from workbench.core.process.exits import ExitStatus, exit_watcher, process_alive, signal_name
from workbench.core.process.procs import ProcInfo

# psutil's status names of the states that stop a process from making progress
FROZEN_STATES = {"stopped": "T", "tracing-stop": "t", "disk-sleep": "D"}
# vLLM's own words for a child's end: "died unexpectedly (exit code: -9)", "{'EngineCore_DP0': -9}"
_LOG_EXIT = re.compile(r"exit ?code:? ?(-\d+)|': (-\d+)\}")


@dataclass
class Member:
    pid: int
    name: str
    cmdline: str
    ppid: int

    @property
    def title(self) -> str:
        """The title vLLM sets (VLLM::EngineCore), else the process name."""
        for text in (self.cmdline, self.name):
            if text.startswith("VLLM::"):
                return text.split()[0]
        return self.name

    @property
    def is_vllm(self) -> bool:
        return self.title.startswith("VLLM::")


@dataclass
class Gone:
    member: Member
    status: ExitStatus | None
    at: float = field(default_factory=time.time)

    def how(self) -> str:
        if self.status is None:
            return "is gone (its exit status was not visible: its parent reaped it)"
        return self.status.text()

    @property
    def signal(self) -> int | None:
        return self.status.signal if self.status else None


@dataclass
class Frozen:
    member: Member
    state: str  # T, t or D
    since: float  # monotonic time first seen in that state


class Liveness:
    """Tracks the tree's members between samples; cheap enough to ask every tick."""

    def __init__(self, root_pid: int | None) -> None:
        self.root_pid = root_pid
        self.members: dict[int, Member] = {}
        self._frozen: dict[int, Frozen] = {}
        self._exits = exit_watcher()

    def observe(self, infos: list[ProcInfo]) -> None:
        """A fresh sample of the tree: remember who is in it and who is frozen."""
        now = time.monotonic()
        for info in infos:
            member = self.members.get(info.pid)
            # titles change as vLLM sets them (comm first, then argv): keep the latest of both
            if member is None or (info.name, info.cmdline) != (member.name, member.cmdline) and info.name:
                self.members[info.pid] = Member(info.pid, info.name, info.cmdline, info.ppid)
            state = FROZEN_STATES.get(info.status)
            held = self._frozen.get(info.pid)
            if state is None:
                self._frozen.pop(info.pid, None)
            elif held is None or held.state != state:
                self._frozen[info.pid] = Frozen(self.members[info.pid], state, now)

    def gone(self) -> list[Gone]:
        """Members (other than the root, which we reap ourselves) no longer alive."""
        out = []
        for pid in list(self.members):
            if pid == self.root_pid or process_alive(pid):
                continue
            member = self.members.pop(pid)
            self._frozen.pop(pid, None)
            out.append(Gone(member, self._exits.status_of(pid, wait=0.3)))
        return out

    def frozen_for(self, seconds: float, traced: float = 15.0) -> list[Frozen]:
        """Members stopped or in D for at least `seconds`; traced (t) for at least `traced` —
        py-spy itself holds its target in t while it reads it, for up to its timeout."""
        now = time.monotonic()
        return [f for f in self._frozen.values()
                if now - f.since >= (max(seconds, traced) if f.state == "t" else seconds) and process_alive(f.member.pid)]


def signal_from_log(lines: list[str]) -> int | None:
    """A negative exit code vLLM printed for a child (multiprocessing's -N: killed by signal N)."""
    for line in reversed(lines):
        found = _LOG_EXIT.search(line)
        if found:
            return -int(found.group(1) or found.group(2))
    return None


def death_sentence(gone: Gone, log_signal: int | None = None) -> str:
    """'VLLM::EngineCore (PID 16890) killed by SIGKILL at 03:09:19 while serving — ...'"""
    member = gone.member
    sig = gone.signal or log_signal
    when = time.strftime("%H:%M:%S", time.localtime(gone.status.at if gone.status else gone.at))
    if sig:
        how = f"killed by {signal_name(sig)}"
        if gone.signal is None:
            how += " (vLLM's log says so)"
    else:
        how = gone.how()
    text = f"{member.title} (PID {member.pid}) {how} at {when} while serving"
    if sig == 9:
        text += " — the kernel's OOM killer does this: check `dmesg`/`journalctl -k`"
    elif sig in (6, 7, 11):
        text += " — a crash in native code (CUDA/driver/kernel library): its stack is in the log or a core dump"
    elif gone.status is not None and gone.status.code:
        text += " — its traceback, if any, is in the log above"
    return text
