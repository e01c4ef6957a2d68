"""Spawn a command in a pty, find its whole process tree, and stop that tree for sure.

Every supervised child gets `WORKBENCH_SESSION=<token>` in its environment. Environments are
inherited, so the token finds descendants that left the process group with `setsid()` or were
re-parented to init — the tree walk alone would miss them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import termios
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil
from ptyprocess import PtyProcess

from workbench.core.secrets import mask_argv

TOKEN_VAR = "WORKBENCH_SESSION"
# The pump (pty -> log copier) carries this instead of the token: stopping a tree must not stop
# its pump, or whatever the server prints while it shuts down (a traceback) is lost. The pump
# ends by itself once the last holder of the pty is gone; the reaper kills a pump that lingers.
PUMP_VAR = "WORKBENCH_PUMP"
_PR_SET_PDEATHSIG = 1


def _raw_output(fd: int = 1) -> None:
    """Turn off output post-processing (OPOST) on the child's pty: without it the kernel turns
    every "\n" into "\r\n" and the raw log would not be what the child wrote. The display
    splits lines itself, and a terminal we copy bytes to (`--raw`) adds its own "\r"."""
    try:
        attrs = termios.tcgetattr(fd)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except (termios.error, OSError):  # not a terminal: nothing to turn off
        pass


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the spawning thread's process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: group kill and the reaper still apply
        pass


# Dispositions a child must not inherit from us. A workbench started in the background
# (`cmd &` in a script, nohup) has SIGINT/SIGQUIT (and SIGHUP) ignored, and an ignored signal
# stays ignored across exec: the server would then shrug off the stop's SIGINT and only die at
# SIGTERM, its clean shutdown skipped. Python itself ignores SIGPIPE and SIGXFSZ.
_RESET_SIGNALS = ("SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGXFSZ")


def default_signals() -> None:
    """In a child before exec: every signal at its default action and none blocked, as a
    shell gives a foreground command. Also used by tests that spawn the workbench itself."""
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _prepare_child() -> None:
    default_signals()
    _raw_output()
    _die_with_parent()


def spawn(argv: list[str], env: dict[str, str], cwd: str | None, rows: int = 50, cols: int = 200) -> PtyProcess:
    """Start argv in a new session (and so a new process group) on a fresh pty."""
    return PtyProcess.spawn(argv, cwd=cwd, env=env, dimensions=(rows, cols), preexec_fn=_prepare_child)


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    name: str
    cmdline: str
    status: str
    cpu_percent: float = 0.0
    rss: int = 0
    threads: int = 0
    depth: int = 0

    def to_dict(self) -> dict:
        return {
            "pid": self.pid, "ppid": self.ppid, "name": self.name, "cmdline": self.cmdline,
            "status": self.status, "cpu_percent": self.cpu_percent, "rss": self.rss,
            "threads": self.threads, "depth": self.depth,
        }


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _holders(var: str, token: str) -> list[psutil.Process]:
    """Every live process (but us) whose environment has `var` set to `token`."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(var) == token and _alive(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def token_holders(token: str) -> list[psutil.Process]:
    """Every live process whose environment carries our session token."""
    return _holders(TOKEN_VAR, token)


def pump_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a run's pump: marked as the session's pump, not as its child."""
    out = {k: v for k, v in env.items() if k != TOKEN_VAR}
    if TOKEN_VAR in env:
        out[PUMP_VAR] = env[TOKEN_VAR]
    return out


def pump_holders(token: str) -> list[psutil.Process]:
    """The session's live pumps."""
    return _holders(PUMP_VAR, token)


def tree(root_pid: int) -> list[psutil.Process]:
    """The root and all its live descendants (root first)."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    return [p for p in procs if _alive(p)]


def describe(procs: Iterable[psutil.Process], root_pid: int | None = None) -> list[ProcInfo]:
    """A snapshot of each process (name is the title vLLM sets, e.g. VLLM::EngineCore)."""
    out: list[ProcInfo] = []
    depth: dict[int, int] = {}
    for proc in procs:
        try:
            with proc.oneshot():
                ppid = proc.ppid()
                d = 0 if proc.pid == root_pid else depth.get(ppid, 0) + 1
                depth[proc.pid] = d
                out.append(
                    ProcInfo(
                        pid=proc.pid,
                        ppid=ppid,
                        name=proc.name(),
                        # shown and saved (summary.json): `--api-key VALUE` must not be
                        cmdline=" ".join(mask_argv(proc.cmdline()))[:500],
                        status=proc.status(),
                        cpu_percent=proc.cpu_percent(None),
                        rss=proc.memory_info().rss,
                        threads=proc.num_threads(),
                        depth=d,
                    )
                )
        except psutil.Error:
            continue
    return out


def _signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def _outside_group(procs: Iterable[psutil.Process], group: int) -> list[psutil.Process]:
    """The processes a signal to `group` does not reach (they left it with setsid/setpgid)."""
    out = []
    for proc in procs:
        try:
            if os.getpgid(proc.pid) != group:
                out.append(proc)
        except OSError:  # gone meanwhile
            continue
    return out


def _signal_tree(root_pid: int, procs: list[psutil.Process], sig: int) -> None:
    """Deliver `sig` once to each process: the group in one go, then whoever left it.
    Twice would not be harmless: to a Python server a second SIGINT arriving while its
    handler runs starts the handler again (the shutdown begins twice), and to many a second
    Ctrl-C means "skip the clean shutdown"."""
    try:
        os.killpg(root_pid, sig)  # the session leader's group: children not yet seen too
    except (ProcessLookupError, PermissionError):
        _signal_all(procs, sig)
        return
    _signal_all(_outside_group(procs, root_pid), sig)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    return alive


def stop_tree(
    root_pid: int,
    token: str | None,
    int_timeout: float = 5.0,
    term_timeout: float = 5.0,
    kill_timeout: float = 3.0,
    start_with: int = signal.SIGINT,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, list[int]]:
    """SIGINT, then SIGTERM, then SIGKILL to every process of the tree, waiting between.
    `progress` hears each step as it happens ("SIGINT sent to 3 processes; SIGTERM in 5 s").

    Returns (the signal that finished the job or "none", pids still alive at the end).
    """
    procs = tree(root_pid)
    if token:
        known = {p.pid for p in procs}
        procs.extend(p for p in token_holders(token) if p.pid not in known)
    if not procs:
        return "none", []
    steps = [(signal.SIGINT, int_timeout), (signal.SIGTERM, term_timeout), (signal.SIGKILL, kill_timeout)]
    order = [s for s, _t in steps]
    steps = steps[order.index(start_with):]
    used = "none"
    for number, (sig, timeout) in enumerate(steps):
        _signal_tree(root_pid, procs, sig)
        used = signal.Signals(sig).name
        if progress is not None:
            after = (f"{signal.Signals(steps[number + 1][0]).name} in {timeout:.0f} s unless they exit"
                     if number + 1 < len(steps) else f"waiting up to {timeout:.0f} s")
            progress(f"{used} sent to {len(procs)} process(es); {after}")
        procs = _wait_gone(procs, timeout)
        if token:  # late children forked while we were stopping
            known = {p.pid for p in procs}
            procs.extend(p for p in token_holders(token) if p.pid not in known)
        if not procs:
            return used, []
    return used, [p.pid for p in procs]
