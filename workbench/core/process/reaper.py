"""A watchdog process that outlives the workbench only to clean up after it.

If the workbench is killed with SIGKILL, nothing in it runs; PR_SET_PDEATHSIG takes care of the
direct child only. The reaper holds the read end of a pipe; when the workbench dies the pipe
closes, and the reaper kills every process that carries the session token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from workbench.core.process.procs import pump_holders, token_holders


def start_reaper(token: str) -> subprocess.Popen:
    """Start the watchdog; keep the returned object alive as long as the engine lives."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_SESSION", "WORKBENCH_PUMP")}
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.core.process.reaper", token],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the terminal's group: Ctrl-C and SIGHUP miss it
        env=env,
        close_fds=True,
    )


# How long a normal shutdown waits for the reaper's last sweep. The sweep is bounded by its
# own graces (3 s + 5 s); this is only a backstop, generous because killing the reaper
# mid-sweep on a busy machine would leave exactly what it was about to kill.
REAPER_WAIT = 60.0


def stop_reaper(proc: subprocess.Popen) -> None:
    """Normal shutdown: the runs are stopped already; the reaper sweeps once and exits."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=REAPER_WAIT)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()


def sweep(token: str, grace: float = 3.0, pump_grace: float = 5.0) -> int:
    """Kill the session's processes (SIGTERM, then SIGKILL), then give its pumps time to copy
    what is left in the pty to the log; they end by themselves when the pty closes."""
    import psutil

    procs = token_holders(token)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    # a second look: something may have forked during the first pass
    late = token_holders(token)
    for proc in late:
        try:
            proc.kill()
        except psutil.Error:
            pass
    pumps = pump_holders(token)
    _gone, stuck = psutil.wait_procs(pumps, timeout=pump_grace)
    for proc in stuck:  # a process without the token still holds the pty: stop copying anyway
        try:
            proc.kill()
        except psutil.Error:
            pass
    return len(procs) + len(late) + len(stuck)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    token = argv[0]
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    sweep(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
