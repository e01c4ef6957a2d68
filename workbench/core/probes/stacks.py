"""Python stacks of every process in a tree, with py-spy, in parallel.

py-spy pauses its target while it reads the stack (unless --nonblocking). A dump that takes too
long is abandoned; a target that *our* dump left stopped is sent SIGCONT, so a dump can never
freeze the server it looks at. A process that was already stopped (state T: someone sent SIGSTOP,
or a debugger holds it) is read without pausing and left stopped: resuming it changes what is
being debugged, so it is an explicit action (`resume_stopped`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PTRACE_HELP = (
    "py-spy needs ptrace rights over the target: run as root, or give py-spy CAP_SYS_PTRACE "
    "(setcap cap_sys_ptrace+ep $(which py-spy)), or allow it with "
    "`sysctl kernel.yama.ptrace_scope=0`; in a container start it with --cap-add SYS_PTRACE."
)


@dataclass
class Frame:
    name: str
    filename: str
    line: int

    def __str__(self) -> str:
        return f"{self.name} ({self.filename}:{self.line})"


@dataclass
class ThreadStack:
    thread_id: int
    name: str
    active: bool
    owns_gil: bool
    frames: list[Frame]  # innermost first, as py-spy prints

    def signature(self) -> tuple:
        return tuple((f.name, f.filename, f.line) for f in self.frames)


@dataclass
class ProcessDump:
    pid: int
    name: str
    cmdline: str
    threads: list[ThreadStack] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    state: str = ""  # the process state when dumped: R, S, D, T (stopped), t (traced), Z

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")

    def state_text(self) -> str:
        """Why a process cannot make progress, when its state says so."""
        if self.stopped:
            return (f"PID {self.pid} ({self.name}) is stopped (state {self.state}): something sent SIGSTOP "
                    "or a debugger holds it")
        if self.state == "D":
            return f"PID {self.pid} ({self.name}) is in uninterruptible sleep (state D): blocked in the kernel (I/O, a driver)"
        return ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict:
        return {
            "pid": self.pid,
            "name": self.name,
            "cmdline": self.cmdline,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "state": self.state,
            "threads": [
                {
                    "thread_id": t.thread_id,
                    "name": t.name,
                    "active": t.active,
                    "owns_gil": t.owns_gil,
                    "frames": [{"name": f.name, "filename": f.filename, "line": f.line} for f in t.frames],
                }
                for t in self.threads
            ],
        }

    def text(self) -> str:
        head = f"Process {self.pid}: {self.name}  {self.cmdline[:200]}"
        if self.state_text():
            head += f"\n  {self.state_text()}"
        if self.error:
            return f"{head}\n  (no dump: {self.error})\n"
        out = [head]
        for t in sorted(self.threads, key=lambda t: (not t.active, not t.owns_gil)):
            state = "active" if t.active else "idle"
            gil = ", holds GIL" if t.owns_gil else ""
            out.append(f"  Thread {t.thread_id} ({state}{gil}): {t.name or ''}")
            out.extend(f"      {f}" for f in t.frames)
        return "\n".join(out) + "\n"


def py_spy_path() -> str | None:
    """py-spy next to our interpreter (installed with us) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


_STATE_LETTERS = {
    psutil.STATUS_RUNNING: "R", psutil.STATUS_SLEEPING: "S", psutil.STATUS_DISK_SLEEP: "D",
    psutil.STATUS_STOPPED: "T", psutil.STATUS_TRACING_STOP: "t", psutil.STATUS_ZOMBIE: "Z",
    psutil.STATUS_DEAD: "X", psutil.STATUS_IDLE: "I",
}


def state_letter(proc: psutil.Process) -> str:
    try:
        return _STATE_LETTERS.get(proc.status(), "?")
    except psutil.Error:
        return ""


def _resume_if_we_stopped(pid: int, was: str) -> None:
    """py-spy killed mid-dump can leave its target stopped: undo only that, never a stop we found."""
    if was in ("T", "t"):
        return
    try:
        if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
            os.kill(pid, signal.SIGCONT)
    except (psutil.Error, OSError):
        pass


def resume_stopped(pids: list[int]) -> list[int]:
    """The explicit action: SIGCONT every stopped process among `pids`; returns those resumed."""
    resumed = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                os.kill(pid, signal.SIGCONT)
                resumed.append(pid)
        except (psutil.Error, OSError):
            continue
    return resumed


def _explain(stderr: str, state: str = "") -> str:
    """py-spy's own error line and first cause, without its Rust backtrace."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    head = next((line for line in lines if line.startswith("Error:")), lines[0] if lines else "py-spy failed")
    cause = next((line for line in lines if line.startswith("0:")), "")
    text = head + (f" ({cause[2:].strip()})" if cause else "")
    low = stderr.lower()
    if "failed to find python version" in low or "not a python" in low:
        return "not a Python process"
    if state in ("T", "t"):
        return f"{text} (the process is stopped, state {state}: not a permission problem)"
    if "permission" in low or "operation not permitted" in low or "ptrace" in low:
        return f"{text}. {PTRACE_HELP}"
    return text


def dump_process(pid: int, native: bool = False, locals_: bool = False, timeout: float = 10.0,
                 nonblocking: bool = False) -> ProcessDump:
    try:
        proc = psutil.Process(pid)
        name, cmdline = proc.name(), " ".join(proc.cmdline())
    except psutil.Error as exc:
        return ProcessDump(pid, "?", "", error=f"process gone ({type(exc).__name__})")
    dump = ProcessDump(pid, name, cmdline, state=state_letter(proc))
    if dump.stopped:
        nonblocking = True  # it cannot move anyway; pausing it would fail ("Failed to suspend")
    spy = py_spy_path()
    if spy is None:
        dump.error = "py-spy is not installed (pip install py-spy)"
        return dump
    cmd = [spy, "dump", "--pid", str(pid), "--json"]
    if native:
        cmd.append("--native")
    if locals_:
        cmd.append("--locals")
    if nonblocking:
        cmd.append("--nonblocking")
    started = time.monotonic()
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        dump.error = f"abandoned after {timeout:g} s (py-spy did not answer)"
        return dump
    finally:
        dump.seconds = time.monotonic() - started
        _resume_if_we_stopped(pid, dump.state)
    if result.returncode != 0:
        dump.error = _explain(result.stderr or result.stdout, dump.state)
        return dump
    try:
        payload = json.loads(result.stdout)
    except ValueError:
        dump.error = "py-spy printed something that is not JSON"
        return dump
    for t in payload:
        frames = [Frame(f.get("name", "?"), f.get("short_filename") or f.get("filename", "?"), int(f.get("line") or 0))
                  for f in t.get("frames", [])]
        dump.threads.append(
            ThreadStack(int(t.get("thread_id") or 0), t.get("thread_name") or "", bool(t.get("active")),
                        bool(t.get("owns_gil")), frames)
        )
    return dump


def dump_tree(pids: list[int], native: bool = False, locals_: bool = False, timeout: float = 10.0,
              nonblocking: bool = False) -> list[ProcessDump]:
    """Dump every pid in parallel; non-Python processes come back with an error, not a dump."""
    if not pids:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(pids))) as pool:
        futures = [pool.submit(dump_process, pid, native, locals_, timeout, nonblocking) for pid in pids]
        return [f.result() for f in futures]


def python_dumps(dumps: list[ProcessDump]) -> list[ProcessDump]:
    return [d for d in dumps if d.ok or d.error != "not a Python process"]


def unmoved_threads(before: list[ProcessDump], after: list[ProcessDump]) -> list[tuple[int, ThreadStack]]:
    """Threads whose whole stack is identical in two dumps: candidates for a hang."""
    old = {(d.pid, t.thread_id): t.signature() for d in before for t in d.threads}
    same = []
    for d in after:
        for t in d.threads:
            if t.frames and old.get((d.pid, t.thread_id)) == t.signature():
                same.append((d.pid, t))
    return same


def format_dumps(dumps: list[ProcessDump]) -> str:
    return "\n".join(d.text() for d in python_dumps(dumps))


def parse_threads(payload: list[dict]) -> list[ThreadStack]:
    """py-spy's `dump --json` output as threads (a recorded dump is read back the same way)."""
    return [
        ThreadStack(int(t.get("thread_id") or 0), t.get("thread_name") or "", bool(t.get("active")),
                    bool(t.get("owns_gil")),
                    [Frame(f.get("name", "?"), f.get("short_filename") or f.get("filename", "?"), int(f.get("line") or 0))
                     for f in t.get("frames", [])])
        for t in payload
    ]
