"""The supervisor of one run: reaps it, probes readiness, sends the smoke request, notices a
stall, and reaches the verdict — then keeps judging while it serves (serving.py): a verdict can
change from healthy to failed or hung (VerdictChanged).

Verdicts: healthy (ready and the smoke request answered), failed (an error stopped it),
false-ready (ready, then the first request failed), hung (no output, no progress, idle CPU for
the stall window — stacks are dumped first), exited (ended before ready, no recognised error).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psutil

from workbench.core.engine.debugger import paused_in_debugger
from workbench.core.engine.events import Notice, ProcessExited, Ready, SmokeResult, Stalled, Verdict
from workbench.core.engine.liveness import Liveness
from workbench.core.engine.serving import ServingJudge, change_verdict
from workbench.core.knowledge import verdicts as V
from workbench.core.probes.http import base_url, probe_health, probe_ready, smoke
from workbench.core.process.preflight import port_holders

if TYPE_CHECKING:
    from workbench.core.engine.run import Run

# how the watcher asks for the tree's stacks (the engine's dump_stacks): (run id, cause)
DumpRequest = Callable[..., object]

TICK = 0.2
TREE_SAMPLE_INTERVAL = 1.0
CPU_WINDOW = 5  # samples of tree CPU considered when deciding "idle"


class Watcher:
    def __init__(self, run: Run, dump_stacks: DumpRequest) -> None:
        self.run = run
        self._dump_stacks = dump_stacks
        self.settings = run.settings
        self._cpu: list[float] = []
        self._procs: dict[int, psutil.Process] = {}
        self._debugger_note: str | None = None
        self._look_again_at = 0.0  # while paused in a debugger: when to dump again
        self._stop = threading.Event()
        self.liveness = Liveness(run.pid)
        self.serving = ServingJudge(run, self.liveness, dump_stacks, self.tree_cpu)
        self._thread = threading.Thread(target=self._loop, name=f"wb-watch-{run.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        run = self.run
        next_probe = 0.0
        next_sample = 0.0
        while not self._stop.is_set():
            if self._reap():
                return
            now = time.monotonic()
            if now >= next_sample:
                next_sample = now + TREE_SAMPLE_INTERVAL
                self._sample_cpu()
            if run.verdict is None and not run.stopping:
                if run.address is not None and run.ready_url is None and now >= next_probe:
                    next_probe = now + self.settings.probe_interval
                    self._probe()
                elif run.address is None and run.diagnosis.phases.reached("ready"):
                    self._decide(V.HEALTHY, "ready (the log says so; no port to probe)")
                if run.verdict is None:
                    self._check_stall(now)
                if run.verdict is None:
                    self._check_frozen()
            elif run.verdict == V.HEALTHY and not run.stopping:
                self.serving.tick(now)
            self._stop.wait(TICK)

    def _reap(self) -> bool:
        run = self.run
        proc = run.proc
        if proc is None:
            return False
        try:
            alive = proc.isalive()
        except Exception:  # noqa: BLE001 - ptyprocess raises on a reaped child
            alive = False
        if alive:
            return False
        run.ended = time.monotonic()
        run.returncode = proc.exitstatus
        run.exit_signal = proc.signalstatus
        run.reader_done.wait(timeout=3.0)  # the last lines usually carry the root cause
        run.exited.set()
        run.bus.publish(
            ProcessExited(run.id, returncode=run.returncode, signal=run.exit_signal, elapsed=run.elapsed())
        )
        if run.verdict is None:
            root = run.root_cause()
            if run.stopping:
                self._decide(V.EXITED, "stopped before a verdict")
            elif root is not None:
                self._decide(V.FAILED, f"exited ({self._exit_text()}) after: {root.title}")
            else:
                self._decide(V.EXITED, f"exited ({self._exit_text()}) before ready, no error recognised")
        elif run.verdict == V.HEALTHY and not run.stopping and not self.serving.judge_death():
            # no engine process died first: the server itself ended while serving
            root = run.root_cause()
            after = f" after: {root.title}" if root is not None else ""
            change_verdict(run, V.FAILED, f"the server (PID {run.pid}) exited ({self._exit_text()}) while serving{after}")
        return True

    def _exit_text(self) -> str:
        run = self.run
        if run.exit_signal:
            return f"signal {run.exit_signal}"
        return f"code {run.returncode}"

    # -- readiness and smoke -----------------------------------------------------------------------

    def _probe(self) -> None:
        run = self.run
        assert run.address is not None
        url = base_url(*run.address)
        ok, detail = probe_ready(url)
        if not ok:
            return
        if not self._port_is_ours(run.address[1]):
            return  # another process answers on this port; ours has not bound it
        run.ready_url = url
        run.model_id = detail
        run.ready_at = run.elapsed()
        run.bus.publish(Ready(run.id, url=url, elapsed=run.ready_at))
        if not self.settings.smoke:
            self._decide(V.HEALTHY, "ready (GET /v1/models answered; smoke request skipped)")
            return
        self.smoke_and_judge()

    def _port_is_ours(self, port: int) -> bool:
        holders = [h.pid for h in port_holders(port) if h.pid is not None]
        if not holders:
            return True  # cannot tell (no rights to see sockets): trust the probe
        ours = self.run.known_pids | {p.pid for p in self.run.sample_tree()}
        return any(pid in ours for pid in holders)

    def smoke_and_judge(self) -> None:
        run = self.run
        assert run.ready_url is not None
        outcome = smoke(run.ready_url, run.model_id, self.settings.smoke_max_tokens, self.settings.smoke_timeout)
        if outcome.ok:
            time.sleep(self.settings.alive_check_delay)  # "still alive a moment later"
            if not run.proc or not run.proc.isalive() or not probe_health(run.ready_url):
                outcome.ok = False
                outcome.error = "the server died or stopped answering right after the request"
        run.smoke_results.append(outcome)
        run.bus.publish(SmokeResult(run.id, **outcome.to_dict()))
        if run.verdict is not None:
            return
        if outcome.ok:
            self._decide(V.HEALTHY, f"ready in {run.ready_at:.1f} s; smoke request answered in {outcome.latency:.2f} s")
        else:
            time.sleep(0.5)  # let the crash reach the log before naming a root cause
            self._decide(V.FALSE_READY, f"ready, then the smoke request failed: {outcome.error or outcome.status}")

    # -- stall -----------------------------------------------------------------------------------

    def _sample_cpu(self) -> None:
        run = self.run
        infos = run.sample_tree()
        total = 0.0
        current: dict[int, psutil.Process] = {}
        for info in infos:
            proc = self._procs.get(info.pid)
            if proc is None:
                try:
                    proc = psutil.Process(info.pid)
                    proc.cpu_percent(None)  # prime: the first reading is always 0
                except psutil.Error:
                    continue
            else:
                try:
                    total += proc.cpu_percent(None)
                except psutil.Error:
                    continue
            current[info.pid] = proc
        self._procs = current
        self.liveness.observe(infos)
        self._cpu = [*self._cpu[-(CPU_WINDOW - 1):], total]

    def tree_cpu(self) -> float:
        return max(self._cpu) if self._cpu else 0.0

    def _check_stall(self, now: float) -> None:
        run = self.run
        if run.ready_url is not None or run.diagnosis.phases.reached("ready") or now < self._look_again_at:
            return
        idle = now - run.last_progress
        if idle >= self.settings.stall_window and len(self._cpu) >= 2 and self.tree_cpu() < self.settings.idle_cpu_percent:
            dumps = self._dump_stacks(run.id, cause="stall")
            if self._paused_in_debugger(dumps, now):
                return
            run.bus.publish(Stalled(run.id, idle_seconds=idle, cpu_percent=self.tree_cpu()))
            self._decide(V.HUNG, f"no output and no progress for {idle:.0f} s, tree CPU {self.tree_cpu():.0f}% (stacks dumped)")
        elif run.elapsed() >= self.settings.startup_timeout:
            if self._paused_in_debugger(self._dump_stacks(run.id, cause="startup timeout"), now):
                return
            self._decide(V.HUNG, f"not ready after the startup timeout ({self.settings.startup_timeout:.0f} s; stacks dumped)")

    def _paused_in_debugger(self, dumps: object, now: float) -> bool:
        """A tree stopped in debugpy is the user's pause, not a hang: say so once, look again later."""
        why = paused_in_debugger(dumps) if isinstance(dumps, list) else None
        if why is None:
            self._debugger_note = None
            return False
        self.run.last_progress = now  # the stall window starts again
        self._look_again_at = now + self.settings.stall_window
        if why != self._debugger_note:
            self._debugger_note = why
            self.run.bus.publish(Notice(self.run.id, level="info", text=f"paused in the debugger, not hung: {why}"))
        return True

    def _check_frozen(self) -> None:
        """Before ready too: a process of the tree stopped for a few seconds (not D: reading
        weights from a slow disk can hold a loader in D for a while)."""
        frozen = [f for f in self.liveness.frozen_for(self.settings.frozen_grace) if f.state in ("T", "t")]
        if frozen:
            first = frozen[0]
            self._dump_stacks(self.run.id, cause="stopped process")
            self._decide(V.HUNG, f"PID {first.member.pid} ({first.member.title}) is in state {first.state} "
                         "(stopped or blocked) before ready (stacks dumped)")

    # -- verdict -----------------------------------------------------------------------------------

    def _decide(self, verdict: str, reason: str) -> None:
        run = self.run
        with run.lock:
            if run.verdict is not None:
                return
            run.verdict = verdict
            run.verdict_reason = reason
            run.history.append({"verdict": verdict, "reason": reason, "time": time.time(),
                                "elapsed": round(run.elapsed(), 3)})
            root = run.diagnosis.root_cause()
        run.bus.publish(Verdict(run.id, verdict=verdict, reason=reason, root_cause=root.root_cause_dict() if root else None))
