"""Judging a server after it was found healthy: engine death and serving stalls.

Every tick while the verdict is `healthy`:
- a vLLM process of the tree gone (EngineCore, a worker) → `failed` at once, naming it, its PID
  and how it ended; the log's engine-death lines, /health and 500 answers are the evidence;
- the API saying the engine is dead (/health 503 or 500, or the log's engine-death line) → `failed`;
- a tree process stopped (T, t) or in D for `frozen_grace` seconds → stacks dumped, `hung`;
- requests in flight (/metrics, or a request of ours) with no token produced, no log output
  (our own probes' access lines do not count) and idle CPU for the stall window → dump, `hung`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.core.engine.events import VerdictChanged
from workbench.core.engine.liveness import Gone, Liveness, death_sentence, signal_from_log
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.requests import annotate_client_errors
from workbench.core.probes.serving_metrics import fetch_serving_numbers, health_status

if TYPE_CHECKING:
    from workbench.core.engine.run import Run

# log lines that are not the server making progress: our own probes' access lines, idle stats
_QUIET_LINE = re.compile(
    r'"GET /(?:health|metrics|v1/models|ping)[^"]*" \d{3}|Avg generation throughput: 0\.0 tokens/s|^\s*$'
)
ENGINE_DEATH_IDS = ("engine_dead", "worker_died")


class ServingJudge:
    def __init__(self, run: Run, liveness: Liveness, dump_stacks: Callable[..., object],
                 tree_cpu: Callable[[], float]) -> None:
        self.run = run
        self.settings = run.settings
        self.liveness = liveness
        self._dump_stacks = dump_stacks
        self._tree_cpu = tree_cpu
        self._next_look = 0.0
        self._seen_lines = len(run.store)
        self._last_progress = time.monotonic()
        self._tokens: float | None = None
        self._in_flight = 0.0
        self.health: int | None = None
        self.evidence: list[str] = []

    def tick(self, now: float) -> None:
        """One look; changes the verdict at most once (from healthy)."""
        if self.run.verdict != V.HEALTHY or self.run.stopping:
            return
        self._log_progress(now)
        if self._engine_death() or self._frozen():
            return
        if now >= self._next_look and self.run.ready_url:
            self._next_look = now + self.settings.health_interval
            self._look(now)
        if self.run.verdict == V.HEALTHY:
            self._serving_stall(now)

    # -- engine death --------------------------------------------------------------------------

    def judge_death(self) -> bool:
        """The server ended: did an engine process die before it? (it names the cause better)"""
        return self.run.verdict == V.HEALTHY and self._engine_death()

    def _engine_death(self) -> bool:
        deaths = [g for g in self.liveness.gone() if self._is_death(g)]
        gone_pids = {g.member.pid for g in deaths}
        deaths.sort(key=lambda g: g.member.ppid in gone_pids)  # the parent first: its children followed it
        if deaths:
            first = deaths[0]
            log_signal = None if first.signal else signal_from_log(self._recent_lines(200))
            reason = death_sentence(first, log_signal)
            if len(deaths) > 1:
                reason += "; also gone: " + ", ".join(f"{g.member.title} (PID {g.member.pid})" for g in deaths[1:])
            self._change(V.FAILED, reason, self._death_evidence())
            return True
        finding = self._engine_death_finding()
        if finding is not None:
            self._change(V.FAILED, f"the API server says its engine died while serving: {finding.line.strip()[:200]}",
                         self._death_evidence())
            return True
        return False

    @staticmethod
    def _is_death(gone: Gone) -> bool:
        status = gone.status
        return gone.member.is_vllm or (status is not None and bool(status.signal or status.code))

    def _engine_death_finding(self):  # noqa: ANN205 - a Finding or None
        ready_seq = self._ready_seq()
        for finding in self.run.findings():
            if finding.id in ENGINE_DEATH_IDS and finding.first_seq >= ready_seq:
                return finding
        return None

    def _ready_seq(self) -> int:
        for record in self.run.diagnosis.phases.records:
            if record.name in ("ready", "serving") and record.seq is not None:
                return record.seq
        return 0

    def _death_evidence(self) -> list[str]:
        evidence = list(self.evidence)
        for finding in self.run.findings():
            if finding.id in ENGINE_DEATH_IDS or finding.id.startswith("server_error"):
                evidence.append(f"log line {finding.first_seq + 1}: {finding.line.strip()[:200]} (×{finding.count})")
        if self.run.ready_url:
            status = health_status(self.run.ready_url, timeout=1.0)
            if status is not None and status != 200:
                evidence.append(f"GET /health → {status}")
        return evidence

    # -- frozen processes and stalls -----------------------------------------------------------------

    def _frozen(self) -> bool:
        frozen = self.liveness.frozen_for(self.settings.frozen_grace)
        if not frozen:
            return False
        first = frozen[0]
        what = ("stopped (state {s}): something sent SIGSTOP or a debugger holds it" if first.state in ("T", "t")
                else "in uninterruptible sleep (state {s}): blocked in the kernel").format(s=first.state)
        seconds = time.monotonic() - first.since
        reason = f"PID {first.member.pid} ({first.member.title}) is {what} — for {seconds:.0f} s while serving"
        self._dump_stacks(self.run.id, cause="stopped process while serving")
        self._change(V.HUNG, reason + " (stacks dumped; resuming it is an explicit action)", list(self.evidence))
        return True

    def _look(self, now: float) -> None:
        url = self.run.ready_url
        assert url is not None
        self.health = health_status(url, timeout=min(2.0, self.settings.health_interval))
        if self.health in (500, 503):
            self._change(V.FAILED, f"GET /health answers {self.health} while serving: the engine is dead",
                         self._death_evidence())
            return
        with self.run.lock:
            annotate_client_errors(self.run.findings(), self.run.model_id or None)
        numbers = fetch_serving_numbers(url, timeout=min(2.0, self.settings.health_interval))
        if numbers is None:
            self._in_flight = 0.0
            return
        if numbers.tokens is not None and numbers.tokens != self._tokens:
            if self._tokens is not None:
                self._last_progress = now  # tokens were produced since the last look
            self._tokens = numbers.tokens
        if numbers.in_flight != self._in_flight and numbers.in_flight < self._in_flight:
            self._last_progress = now  # requests finished
        self._in_flight = numbers.in_flight

    def _log_progress(self, now: float) -> None:
        end = len(self.run.store)
        if end <= self._seen_lines:
            return
        start, self._seen_lines = self._seen_lines, end
        if end - start > 20:  # more than our probes print in a tick: output, without reading a flood
            self._last_progress = now
            return
        if any(not _QUIET_LINE.search(line) for line in self.run.store.lines(start, end)):
            self._last_progress = now

    def _serving_stall(self, now: float) -> None:
        in_flight = self._in_flight + self.run.own_requests
        if in_flight <= 0:
            self._last_progress = now  # nothing asked of it: an idle server is not a stalled one
            return
        idle = now - self._last_progress
        cpu = self._tree_cpu()
        if idle >= self.settings.stall_window and cpu < self.settings.idle_cpu_percent:
            self._dump_stacks(self.run.id, cause="serving stall")
            self._change(V.HUNG, f"{in_flight:.0f} request(s) in flight, no token, no output and tree CPU "
                         f"{cpu:.0f}% for {idle:.0f} s while serving (stacks dumped)", list(self.evidence))

    def _recent_lines(self, count: int) -> list[str]:
        end = len(self.run.store)
        return self.run.store.lines(max(0, end - count), end)

    # -- the change ------------------------------------------------------------------------------

    def _change(self, verdict: str, reason: str, evidence: list[str]) -> None:
        change_verdict(self.run, verdict, reason, evidence)


def change_verdict(run: Run, verdict: str, reason: str, evidence: list[str] | None = None) -> bool:
    """healthy → failed | hung, once; published as VerdictChanged. False when it was not healthy,
    or when we are stopping it (what our own stop does to the tree is no verdict)."""
    with run.lock:
        if run.verdict != V.HEALTHY or run.stopping:
            return False
        previous = run.verdict
        run.verdict = verdict
        run.verdict_reason = reason
        run.history.append({"verdict": verdict, "reason": reason, "time": time.time(),
                            "elapsed": round(run.elapsed(), 3), "evidence": list(evidence or [])})
        root = run.root_cause()
    run.bus.publish(VerdictChanged(run.id, verdict=verdict, previous=previous, reason=reason,
                                   root_cause=root.root_cause_dict() if root else None,
                                   evidence=list(evidence or []), elapsed=run.elapsed()))
    return True
