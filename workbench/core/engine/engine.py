"""The engine: owns the runs of a session, takes commands, publishes events.

Faces (TUI, headless printer, attach clients) hold no state of their own; they issue commands
and read runs. Children are spawned from one long-lived thread because PR_SET_PDEATHSIG fires
when the *thread* that forked dies, not the process.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench.core.cmdline import apply_arg_delta, apply_env_delta, server_address
from workbench.core.engine.bus import EventBus
from workbench.core.engine.events import (
    DumpStacks,
    InputSent,
    Launch,
    Message,
    Notice,
    ProfileRecorded,
    Relaunch,
    RunStarted,
    Smoke,
    StacksDumped,
    Stop,
    Stopped,
    StopRequested,
)
from workbench.core.engine.run import Run, RunSpec
from workbench.core.engine.settings import Settings
from workbench.core.engine.watch import Watcher
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import KnowledgeBase, load_knowledge_base
from workbench.core.knowledge.stuck import analyze as analyze_stuck
from workbench.core.probes.http import SmokeOutcome, base_url, smoke
from workbench.core.probes.procfacts import facts_between
from workbench.core.probes.procfacts import sample as cpu_sample
from workbench.core.probes.stacks import (
    ProcessDump,
    dump_tree,
    format_dumps,
    python_dumps,
    unmoved_threads,
)
from workbench.core.process.procs import TOKEN_VAR, spawn, stop_tree
from workbench.core.process.reaper import start_reaper, stop_reaper
from workbench.core.record.session import Session, make_private_dir
from workbench.core.secrets import MASK, mask_argv, mask_env


class Engine:
    def __init__(self, session: Session, kb: KnowledgeBase | None = None,
                 settings: Settings | None = None, reaper: bool = True) -> None:
        self.session = session
        self.kb = kb if kb is not None else load_knowledge_base()
        self.recogniser = Recogniser(self.kb)
        self.settings = settings or Settings()
        self.bus = EventBus()
        self.bus.subscribe(session.record)
        self.runs: dict[str, Run] = {}
        self.watchers: dict[str, Watcher] = {}
        self.dumps: dict[str, list[list[ProcessDump]]] = {}
        self.base_env = dict(os.environ)
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wb-spawn")
        self._lock = threading.Lock()
        # held while a run is born (spawned, registered, attached) and while shutdown begins:
        # a launch racing the shutdown (a relaunch's second half) either finishes first and is
        # stopped by it, or is refused — never a tree started after the last sweep
        self._lifecycle = threading.RLock()
        self._counter = 0
        self._reaper = start_reaper(session.token) if reaper else None
        self.closed = False
        self._env_report: threading.Thread | None = None

    # -- commands ------------------------------------------------------------------------------

    def execute(self, command: Message) -> object:
        """Run a command given as data (from a face, a recipe or an attach client)."""
        if isinstance(command, Launch):
            return self.launch(command.argv, command.env_delta, command.cwd, command.label)
        if isinstance(command, Stop):
            return self.stop(command.run, kill=command.kill)
        if isinstance(command, Relaunch):
            return self.relaunch(command.run, command.env_delta, command.arg_delta, command.cause)
        if isinstance(command, DumpStacks):
            return self.dump_stacks(command.run, command.native, command.locals)
        if isinstance(command, Smoke):
            return self.smoke(command.run)
        raise ValueError(f"unknown command {command!r}")

    def _next_id(self) -> str:
        with self._lock:
            self._counter += 1
            return f"r{self._counter}"

    def child_env(self, env_delta: dict[str, str | None]) -> dict[str, str]:
        env = apply_env_delta(self.base_env, env_delta)
        env[TOKEN_VAR] = self.session.token
        return env

    def launch(self, argv: list[str], env_delta: dict[str, str | None] | None = None,
               cwd: str | None = None, label: str = "", cause: str = "launch",
               parent: str | None = None) -> Run:
        spec = RunSpec(list(argv), dict(env_delta or {}), cwd, label, cause, parent)
        with self._lifecycle:
            if self.closed:
                raise RuntimeError("the workbench is shutting down: nothing new is launched")
            run_id = self._next_id()
            run = Run(run_id, spec, self.session.run_dir(run_id), self.recogniser, self.bus, self.settings)
            env = self.child_env(spec.env_delta)
            proc = self._spawner.submit(
                spawn, spec.argv, env, cwd, self.settings.pty_rows, self.settings.pty_cols
            ).result()
            with self._lock:
                self.runs[run_id] = run
            self.bus.publish(
                RunStarted(
                    run_id, argv=mask_argv(spec.argv), env_delta=mask_env(spec.env_delta),
                    cwd=cwd or os.getcwd(), pid=proc.pid, label=label, cause=cause,
                    port=run.address[1] if run.address else None, log_path=str(run.store.path),
                )
            )
            run.attach_process(proc, env)
        self._write_recipe(run)
        if self._env_report is None:  # once per session, off the launch path
            self._env_report = threading.Thread(target=self._write_env_report, args=(spec.argv, env, cwd),
                                                name="wb-env", daemon=True)
            self._env_report.start()
        watcher = Watcher(run, dump_stacks=self.dump_stacks)
        self.watchers[run_id] = watcher
        watcher.start()
        return run

    def _write_recipe(self, run: Run) -> None:
        """Every run can be replayed: its recipe (secrets as names only) beside its log."""
        from workbench.core.record.recipe import recipe_from_run, recipe_toml

        recipe = recipe_from_run(f"{self.session.dir.name}-{run.id}", run.spec.argv, run.spec.env_delta,
                                 run.spec.cwd or os.getcwd(), description=f"recorded: {run.spec.cause}")
        self.session.write_text(f"runs/{run.id}/recipe.toml", recipe_toml(recipe))

    def _write_env_report(self, argv: list[str], env: dict[str, str], cwd: str | None) -> None:
        from workbench.core.probes.envreport import environment_report

        try:
            self.session.write_json("env.json", environment_report(argv, env, cwd))
        except OSError:
            pass  # the session dir went away: nothing to report into

    def adopt(self, run: Run) -> None:
        """Take in a run recorded earlier (read-only); new launches get later ids."""
        with self._lock:
            self.runs[run.id] = run
            number = int(run.id[1:]) if run.id[1:].isdigit() else 0
            self._counter = max(self._counter, number)

    def get(self, run_id: str) -> Run:
        try:
            return self.runs[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}") from None

    def stop(self, run_id: str, kill: bool = False, cause: str = "stop") -> tuple[str, list[int]]:
        """SIGINT → SIGTERM → SIGKILL on the whole tree; returns (signal used, survivors)."""
        import signal as _signal

        run = self.get(run_id)
        if run.proc is None:
            return "none", []
        if run.alive:
            run.sample_tree()  # the tree as it was serving, for the summary
        run.stopping = True
        with run.lock:
            run.diagnosis.mark_stop(len(run.store))
        self.bus.publish(StopRequested(run_id, cause=cause))
        used, survivors = stop_tree(
            run.proc.pid, self.session.token if not self._other_live_runs(run_id) else None,
            self.settings.stop_int_timeout, self.settings.stop_term_timeout,
            start_with=_signal.SIGKILL if kill else _signal.SIGINT,
            progress=lambda step: self.notice(run_id, f"stopping {run_id}: {step}"),
        )
        run.stop_signal = used
        run.exited.wait(timeout=5.0)
        self.bus.publish(Stopped(run_id, signal_used=used, survivors=survivors))
        return used, survivors

    def _other_live_runs(self, run_id: str) -> bool:
        # the token is per session: sweeping by token is only safe when no other run is alive
        return any(r.alive for rid, r in self.runs.items() if rid != run_id)

    def relaunch(self, run_id: str, env_delta: dict[str, str | None] | None = None,
                 arg_delta: dict[str, str | bool] | None = None, cause: str = "relaunch",
                 keep_old: bool = False) -> Run:
        """Launch the run's command again with deltas applied (and stop the old one unless
        `keep_old`, as the isolation rerun does)."""
        old = self.get(run_id)
        if not keep_old and old.alive:
            self.stop(run_id, cause=f"relaunch: {cause}")
        # a masked value (a secret recorded as ***) is inherited from our environment instead
        env = {k: v for k, v in {**old.spec.env_delta, **(env_delta or {})}.items() if v != MASK}
        argv = apply_arg_delta(old.spec.argv, arg_delta or {})
        return self.launch(argv, env, old.spec.cwd, old.spec.label, cause=cause, parent=run_id)

    def dump_stacks(self, run_id: str, native: bool = False, locals_: bool = False,
                    cause: str = "key") -> list[ProcessDump]:
        run = self.get(run_id)
        pids = [p.pid for p in run.sample_tree()]
        before = cpu_sample(pids)  # the state before py-spy attaches (a traced process reads as stopped)
        every = dump_tree(pids, native, locals_, self.settings.dump_timeout)
        dumps = python_dumps(every)
        history = self.dumps.setdefault(run_id, [])
        since = time.strftime("%H:%M:%S", time.localtime(run.started_wall + run.last_progress - run.started))
        # every process, not only Python: a compiler subprocess says the engine is compiling
        stuck = analyze_stuck(every, facts_between(before, cpu_sample(pids)), history[-1] if history else None, since=since)
        run.stuck = stuck.to_dict()
        text = "Where it is stuck:\n" + "".join(f"  {line}\n" for line in stuck.summary) + "\n" + format_dumps(dumps)
        if history:
            same = unmoved_threads(history[-1], dumps)
            if same:
                text += "\nStacks that did not move since the previous dump:\n" + "".join(
                    f"  PID {pid} thread {t.thread_id}: {t.frames[0] if t.frames else '?'}\n" for pid, t in same
                )
        history.append(dumps)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        rel = f"runs/{run_id}/stacks/{stamp}-{len(history)}"
        self.session.write_text(rel + ".txt", text)
        path = self.session.write_json(rel + ".json", {"cause": cause, "stuck": run.stuck,
                                                      "processes": [d.to_dict() for d in dumps]})
        run.dump_paths.append(str(path))
        errors = [f"PID {d.pid}: {d.error}" for d in dumps if d.error]
        summary = f"{sum(1 for d in dumps if d.ok)} of {len(dumps)} Python processes dumped"
        states = [d.state_text() for d in dumps if d.state_text()]
        if states:
            summary += "; " + "; ".join(states)
        self.bus.publish(StacksDumped(run_id, path=str(path), processes=len(dumps), errors=errors, summary=summary,
                                      stuck=run.stuck))
        return dumps

    def smoke(self, run_id: str) -> SmokeOutcome:
        run = self.get(run_id)
        if run.address is None:
            outcome = SmokeOutcome(False, None, None, "", "", "no port known for this command")
        else:
            url = run.ready_url or base_url(*run.address)
            run.own_requests += 1  # a request of ours in flight counts for the serving-stall check
            try:
                outcome = smoke(url, run.model_id, self.settings.smoke_max_tokens, self.settings.smoke_timeout)
            finally:
                run.own_requests -= 1
        run.smoke_results.append(outcome)
        self.session.append_jsonl(f"runs/{run_id}/smoke.jsonl", outcome.to_dict())
        from workbench.core.engine.events import SmokeResult

        self.bus.publish(SmokeResult(run_id, **outcome.to_dict()))
        return outcome

    def resume_stopped(self, run_id: str) -> list[int]:
        """The explicit action: SIGCONT the run's processes found stopped (state T)."""
        from workbench.core.probes.stacks import resume_stopped

        resumed = resume_stopped([p.pid for p in self.get(run_id).sample_tree()])
        text = f"resumed PID {', '.join(map(str, resumed))} (SIGCONT)" if resumed else "no stopped process to resume"
        self.notice(run_id, text, level="info")
        return resumed

    def send_input(self, run_id: str, data: bytes) -> int:
        """Type into the run's pty (a pdb/ipdb prompt, a script asking a question)."""
        run = self.get(run_id)
        if run.proc is None or not run.alive:
            raise ValueError(f"{run_id} is not running")
        written = os.write(run.proc.fd, data)
        self.bus.publish(InputSent(run_id, size=written))
        return written

    def profile(self, run_id: str, pid: int, seconds: float = 10.0, native: bool = False):
        """A short sampling profile of one process of the run's tree, saved in the session
        as a flame graph (SVG) and a speedscope file."""
        from workbench.core.probes.profile import record_profile

        run = self.get(run_id)
        if pid not in {p.pid for p in run.sample_tree()}:
            raise ValueError(f"PID {pid} is not in {run_id}'s process tree")
        result = record_profile(pid, seconds, make_private_dir(run.dir / "profiles"), native=native)
        paths = getattr(result, "paths", {}) or {}
        self.bus.publish(ProfileRecorded(
            run_id, pid=pid, seconds=seconds, samples=result.samples,
            svg=str(paths.get("svg", "")), speedscope=str(paths.get("speedscope", "")),
            top=[str(t) for t in (result.top or [])][:10], error=result.error,
        ))
        return result

    def notice(self, run_id: str, text: str, level: str = "info") -> None:
        self.bus.publish(Notice(run_id, level=level, text=text))

    # -- the end -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every run (the no-orphan promise), then the reaper and the session."""
        with self._lifecycle:  # waits for a launch under way; later ones are refused
            if self.closed:
                return
            self.closed = True
        for run_id, run in list(self.runs.items()):
            if run.alive:
                self.stop(run_id, cause="shutdown")
        for watcher in self.watchers.values():
            watcher.cancel()
        if self._env_report is not None:
            self._env_report.join(timeout=10)
        for run in self.runs.values():
            if not run.recorded:
                self.session.write_json(f"runs/{run.id}/summary.json", run.summary())
        if self._reaper is not None:
            stop_reaper(self._reaper)
        self._spawner.shutdown(wait=False)
        self.session.close()
        for run in self.runs.values():
            run.store.close()


def verdict_exit_code(verdict: str | None) -> int:
    return V.EXIT_CODES.get(verdict or V.EXITED, V.EXIT_CODES[V.EXITED])


def session_for(directory: str | None, name: str) -> Session:
    return Session(Path(directory) if directory else None, name=name)


__all__ = ["Engine", "verdict_exit_code", "session_for", "server_address"]
