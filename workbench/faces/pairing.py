"""The command-line face of pairing: `attach` (history, follow, one command), `stop`, and the
printer that shows a live session's logs and shared timeline in a plain terminal."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from workbench.core.engine.events import (
    ActionTaken,
    ClientPresence,
    DumpStacks,
    FindingRaised,
    Message,
    Notice,
    PhaseChanged,
    ProcessExited,
    Ready,
    Relaunch,
    RunStarted,
    Smoke,
    SmokeResult,
    StacksDumped,
    Stop,
    Stopped,
    Verdict,
)
from workbench.core.logs.text import display_lines
from workbench.core.remote.attach_client import (
    AttachClient,
    AttachError,
    SessionState,
    resolve_live,
)

ACTIONS = ("relaunch", "dump", "smoke", "stop", "kill")
POLL = 0.1  # seconds between looks at the logs while following
HISTORY_LINES = 200  # log lines per run shown on attach (the file holds them all)


def stamp(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def describe(event: Message) -> str | None:
    """One line for the timeline a terminal client prints; None for what the log shows anyway."""
    at = stamp(event.time)
    if isinstance(event, ActionTaken):
        return f"{at} ▶ {event.user}@{event.tty}: {event.detail}"
    if isinstance(event, ClientPresence):
        verb = "attached" if event.joined else "left"
        return f"{at} · {event.user}@{event.tty} {verb} ({event.role})"
    if isinstance(event, RunStarted):
        return f"{at} {event.run} started (PID {event.pid}, {event.cause}): {' '.join(event.argv)}"
    if isinstance(event, PhaseChanged):
        return f"{at} {event.run} phase: {event.phase}"
    if isinstance(event, FindingRaised):
        finding = event.finding
        return f"{at} {event.run} finding: {finding.get('id')} ({finding.get('severity')}) {finding.get('title', '')}"
    if isinstance(event, Ready):
        return f"{at} {event.run} ready: {event.url}"
    if isinstance(event, Verdict):
        return f"{at} {event.run} verdict: {event.verdict}" + (f" ({event.reason})" if event.reason else "")
    if isinstance(event, StacksDumped):
        return f"{at} {event.run} stacks: {event.summary} → {event.path}"
    if isinstance(event, SmokeResult):
        return f"{at} {event.run} smoke: {event.status} {event.output[:60] or event.error[:80]!r}"
    if isinstance(event, Stopped):
        return f"{at} {event.run} stopped ({event.signal_used})"
    if isinstance(event, Notice):
        return f"{at} {event.run or 'session'} {event.level}: {event.text}"
    if isinstance(event, ProcessExited):
        how = f"signal {event.signal}" if event.signal else f"code {event.returncode}"
        return f"{at} {event.run} exited ({how})"
    return None


class LogTail:
    """New complete lines of one run's log file, read by path (the store is on this machine)."""

    def __init__(self, path: str, start_at_end: bool = False) -> None:
        self.path = path
        self.offset = 0
        self._partial = b""
        if start_at_end:
            try:
                self.offset = os.path.getsize(path)
            except OSError:
                pass

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        return display_lines(complete)


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass


def print_history(state: SessionState, lines: int = HISTORY_LINES) -> dict[str, LogTail]:
    """The session so far: each run's log (its last `lines`), then the events in order.
    Returns tails positioned at the end of each log, for following."""
    tails: dict[str, LogTail] = {}
    for run in state.runs.values():
        tail = LogTail(run.log_path)
        shown = tail.read()
        tails[run.id] = tail
        status = run.verdict or ("exited" if run.exited else run.phase or "starting")
        _write(f"== {run.id} ({status}) {run.log_path}\n")
        if len(shown) > lines:
            _write(f"   … {len(shown) - lines} earlier lines in the file\n")
        _write("".join(f"[{run.id}] {line}\n" for line in shown[-lines:]))
    _write("== timeline\n")
    for event in state.events:
        line = describe(event)
        if line:
            _write(line + "\n")
    return tails


def follow(client: AttachClient, tails: dict[str, LogTail], stop: threading.Event) -> None:
    """Print live events and new log lines until `stop` or the session ends."""
    seen = len(client.snapshot().events)
    while not stop.is_set():
        state = client.snapshot()
        for event in state.events[seen:]:
            if isinstance(event, RunStarted) and event.run not in tails:
                tails[event.run] = LogTail(event.log_path)
            line = describe(event)
            if line:
                _write(line + "\n")
        seen = len(state.events)
        for run_id, tail in tails.items():
            new = tail.read()
            if new:
                _write("".join(f"[{run_id}] {line}\n" for line in new))
        if client.closed.is_set():
            _write(f"-- the session ended{': ' + client.bye_reason if client.bye_reason else ''}\n")
            return
        stop.wait(POLL)


def build_command(action: str, run: str, env_delta: dict[str, str | None],
                  arg_delta: dict[str, str | bool]) -> Message:
    if action == "relaunch":
        return Relaunch(run, env_delta=env_delta, arg_delta=arg_delta, cause="attach: relaunch")
    if action == "dump":
        return DumpStacks(run)
    if action == "smoke":
        return Smoke(run)
    if action in ("stop", "kill"):
        return Stop(run, kill=action == "kill")
    raise AttachError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")


def parse_arg_delta(items: list[str]) -> dict[str, str | bool]:
    """`--max-model-len=4096` sets a flag's value, `--enforce-eager` adds a switch,
    `no:--enforce-eager` removes a flag."""
    delta: dict[str, str | bool] = {}
    for item in items:
        if item.startswith("no:"):
            delta[item[3:]] = False
        elif "=" in item:
            flag, value = item.split("=", 1)
            delta[flag] = value
        else:
            delta[item] = True
    return delta


def attach_cli(session: str | None, control: bool, action: str | None, run: str | None,
               env_delta: dict[str, str | None], arg_delta: dict[str, str | bool],
               history: bool, follow_live: bool, lines: int = HISTORY_LINES) -> int:
    """`workbench attach` in a plain terminal. Returns the exit code; raises AttachError."""
    live = resolve_live(session)
    client = AttachClient(live.socket, control=control).connect()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGHUP, signal.SIGTERM)}
    try:
        client.synced.wait(30)
        code = 0
        if action is not None:
            state = client.snapshot()
            target = run or (state.last_run().id if state.last_run() else None)
            if target is None:
                raise AttachError("the session has no run yet")
            value = client.request(build_command(action, target, env_delta, arg_delta))
            _write(f"{action} {target}: ok{' → ' + str(value) if value not in (None, {}) else ''}\n")
        if history or follow_live or action is None:
            _write(f"attached to {live.name} ({'control' if control else 'read-only'}); Ctrl-C detaches, "
                   f"the runs go on\n")
            tails = print_history(client.snapshot(), lines)
            if follow_live or (action is None and not history):
                follow(client, tails, stop)
        return code
    except KeyboardInterrupt:
        return 0  # detaching is the point of Ctrl-C here: the session goes on
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        client.close()


def stop_cli(session: str | None) -> int:
    from workbench.core.remote.detach import stop_session

    live = stop_session(session)
    _write(f"stopped {live.name}: every run, the reaper and the daemon (PID {live.pid}) are gone\n")
    return 0


def live_names() -> dict[Path, str]:
    """Session directories of live sessions → their name (for `workbench sessions`)."""
    from workbench.core.remote.attach_client import live_sessions
    from workbench.core.remote.protocol import ProtocolError

    try:
        return {Path(s.session_dir).resolve(): s.name for s in live_sessions()}
    except (OSError, ProtocolError):
        return {}
