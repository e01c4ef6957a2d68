"""The TUI: a run's live log, its phases and findings, and the debugging moves one key away.

The app holds no state of its own: it issues engine commands from thread workers and reads
runs. Lines are pulled from the log store on a 20 Hz timer and written in one batch.
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Log, Static

from ..core.cmdline import has_flag, toggle_flag
from ..core.compare import conclusion
from ..core.engine import Engine, session_for
from ..core.events import Message, Notice, SmokeResult, StacksDumped, Verdict
from ..core.phases import PHASE_TITLES
from ..core.run import Run
from ..core.secrets import mask_argv
from ..core.settings import Settings
from ..core.signatures import KnowledgeBase, load_knowledge_base
from .keymap import load_bindings

MARKS = {"error": "✖ ", "warning": "▲ ", "info": "• ", "benign": "· "}
REFRESH = 0.05
MAX_BATCH = 20_000  # lines written per tick at most; the rest next tick (the store keeps all)


class WorkbenchApp(App):
    CSS_PATH = str(Path(__file__).resolve().parent / "app.tcss")
    TITLE = "vLLM Workbench"

    def __init__(self, command: list[str], engine: Engine, env_delta: dict | None = None) -> None:
        super().__init__()
        self.command = command
        self.engine = engine
        self.env_delta = dict(env_delta or {})
        self.runs: list[str] = []
        self.current: str | None = None
        self.shown_seq = 0
        self.follow = True
        self.messages: list[str] = []
        self.events: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.engine.bus.subscribe(self.events.put)

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal():
            yield Log(id="log", max_lines=100_000, highlight=False)
            with VerticalScroll(id="side"):
                yield Static(id="phases")
                yield Static(id="findings")
                yield Static(id="debug")
                yield Static(id="messages")
        yield Footer()

    def on_mount(self) -> None:
        self.launch(self.command, self.env_delta, "launch")
        self.set_interval(REFRESH, self.refresh_view)
        self.set_interval(1.0, self.refresh_side)

    # -- engine commands (blocking: thread workers) ------------------------------------------------

    @work(thread=True, exclusive=False, exit_on_error=False, group="engine")
    def launch(self, argv: list[str], env_delta: dict, cause: str) -> None:
        run = self.engine.launch(argv, env_delta, cause=cause)
        self.call_from_thread(self._add_run, run)

    def _add_run(self, run: Run) -> None:
        self.runs.append(run.id)
        self.show_run(run.id)

    def show_run(self, run_id: str) -> None:
        self.current = run_id
        self.shown_seq = 0
        self.query_one("#log", Log).clear()
        self.refresh_view()
        self.refresh_side()

    def current_run(self) -> Run | None:
        return self.engine.runs.get(self.current) if self.current else None

    def note(self, text: str) -> None:
        self.messages = [*self.messages[-8:], f"{time.strftime('%H:%M:%S')} {text}"]
        self.query_one("#messages", Static).update("[b]Notes[/b]\n" + escape("\n".join(self.messages)))

    @work(thread=True, exit_on_error=False, group="engine")
    def action_dump(self) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.call_from_thread(self.note, "no live run to dump")
            return
        self.call_from_thread(self.note, "dumping stacks…")
        self.engine.dump_stacks(run.id, cause="key d")

    @work(thread=True, exit_on_error=False, group="engine")
    def action_smoke(self) -> None:
        run = self.current_run()
        if run is not None:
            self.engine.smoke(run.id)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_stop(self) -> None:
        run = self.current_run()
        if run is not None and run.alive:
            self.engine.stop(run.id, cause="key x")
            self.call_from_thread(self.note, f"{run.id} stopped")

    @work(thread=True, exit_on_error=False, group="engine")
    def action_relaunch(self) -> None:
        run = self.current_run()
        if run is None:
            return
        new = self.engine.relaunch(run.id, env_delta=self.env_delta, cause="key r: relaunch")
        self.call_from_thread(self._add_run, new)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_eager(self) -> None:
        run = self.current_run()
        if run is None:
            return
        argv = toggle_flag(run.spec.argv, "--enforce-eager")
        if run.alive:
            self.engine.stop(run.id, cause="key e: eager rerun")  # the port and the device are exclusive
        new = self.engine.launch(argv, run.spec.env_delta, run.spec.cwd, cause="key e: --enforce-eager toggled", parent=run.id)
        self.call_from_thread(self._add_run, new)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_apply_action(self) -> None:
        run = self.current_run()
        root = run.root_cause() if run else None
        action = next((a for a in root.actions if a.applicable), None) if root else None
        if run is None or action is None:
            self.call_from_thread(self.note, "no machine-applicable action for the root cause")
            return
        env = {k: (None if v is False else ("1" if v is True else v)) for k, v in action.env_delta.items()}
        new = self.engine.relaunch(run.id, env, dict(action.arg_delta), cause=f"key a: {root.id}: {action.text}")
        self.call_from_thread(self._add_run, new)

    def action_toggle_debug(self) -> None:
        if self.env_delta.get("VLLM_LOGGING_LEVEL") == "DEBUG":
            self.env_delta.pop("VLLM_LOGGING_LEVEL")
        else:
            self.env_delta["VLLM_LOGGING_LEVEL"] = "DEBUG"
        self.refresh_side()
        self.note("debug variables change on the next relaunch (r)")

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.note("following the tail" if self.follow else "paused")

    def action_next_run(self) -> None:
        if self.runs and self.current in self.runs:
            self.show_run(self.runs[(self.runs.index(self.current) + 1) % len(self.runs)])

    async def action_quit_workbench(self) -> None:
        self.note("stopping every run…")
        self.quit_in_worker()

    @work(thread=True, exit_on_error=False, group="quit")
    def quit_in_worker(self) -> None:
        self.engine.shutdown()
        self.call_from_thread(self.exit, 0)

    # -- the view ------------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._on_engine_event(event)
        run = self.current_run()
        if run is None:
            return
        if self.follow:
            end = min(len(run.store), self.shown_seq + MAX_BATCH)
            if end > self.shown_seq:
                lines = run.store.lines(self.shown_seq, end)
                marks = run.diagnosis.marks
                if run.diagnosis.has_marks_between(self.shown_seq, end):
                    lines = [MARKS.get(marks.get(self.shown_seq + i, ""), "  ") + line[:2000] for i, line in enumerate(lines)]
                else:
                    lines = ["  " + line[:2000] for line in lines]
                self.query_one("#log", Log).write_lines(lines)
                self.shown_seq = end
        self._update_header(run)

    def _update_header(self, run: Run) -> None:
        cpu = sum(p.cpu_percent for p in run.tree_snapshot)
        rss = sum(p.rss for p in run.tree_snapshot) / 2**30
        verdict = run.verdict or ("running" if run.alive else "exited")
        prompt = "  [b yellow]debugger prompt waiting[/]" if run.store.partial.rstrip().endswith(("(Pdb)", "ipdb>")) else ""
        self.query_one("#header", Static).update(
            f"[b]{run.id}[/b] {escape(' '.join(mask_argv(run.spec.argv))[:120])}\n"
            f"PID {run.pid}  phase [b]{PHASE_TITLES[run.phase()]}[/b]  up {run.elapsed():.0f}s  "
            f"CPU {cpu:.0f}%  RSS {rss:.2f} GiB  procs {len(run.tree_snapshot)}  verdict [b]{verdict}[/b]{prompt}"
        )

    def refresh_side(self) -> None:
        run = self.current_run()
        if run is None:
            return
        records = run.diagnosis.phases.to_list(now=run.elapsed())
        lines = ["[b]Phases[/b]"]
        for i, record in enumerate(records):
            current = i == len(records) - 1 and run.alive and run.verdict is None
            lines.append(f"{'▶' if current else '✓'} {PHASE_TITLES[record['name']]:<14} {record['seconds'] or 0:6.1f}s")
        if run.phase() == "graph_capture" and run.alive:
            lines.append("[i]graph capture can take minutes: not a hang[/i]")
        self.query_one("#phases", Static).update("\n".join(lines))
        root = run.root_cause()
        text = ["[b]Findings[/b]"]
        if root is not None:
            text.append(f"[b red]root cause:[/] {escape(root.title)}\n  line {root.first_seq + 1}  {escape(root.why[:160])}")
            for action in root.actions[:3]:
                text.append(f"  • {escape(action.text)}" + ("  [b](a applies)[/b]" if action.applicable else ""))
        for finding in run.findings()[:10]:
            if root is not None and finding is root:
                continue
            tag = " (cascade)" if finding.cascade else (" (benign)" if finding.benign else "")
            text.append(f"{finding.severity}: {escape(finding.title[:60])} ×{finding.count}{tag}")
        verdicts = [f"{rid}: {self.engine.runs[rid].verdict or '…'}"
                    f"{' eager' if has_flag(self.engine.runs[rid].spec.argv, '--enforce-eager') else ''}" for rid in self.runs]
        if len(self.runs) > 1:
            text.append("[b]Runs[/b]  " + "  ".join(verdicts))
            first, second = (self.engine.runs[rid] for rid in self.runs[-2:])
            if first.verdict and second.verdict:
                text.append(escape(conclusion(first.summary(), second.summary(), first.id, second.id)))
        self.query_one("#findings", Static).update("\n".join(text))
        debug = escape(", ".join(f"{k}={v}" for k, v in self.env_delta.items()) or "none")
        self.query_one("#debug", Static).update(f"[b]Debug variables for next relaunch[/b]\n{debug}")

    def _on_engine_event(self, event: Message) -> None:
        if isinstance(event, StacksDumped):
            self.note(f"stacks dumped: {event.summary}; {Path(event.path).name}")
        elif isinstance(event, SmokeResult):
            self.note(f"smoke {event.status} in {event.latency or 0:.2f}s: {event.output[:40] or event.error[:60]}")
        elif isinstance(event, Verdict):
            self.note(f"{event.run}: verdict {event.verdict}")
            self.refresh_side()
        elif isinstance(event, Notice):
            self.note(event.text)


def make_app(command: list[str], kb: KnowledgeBase | None = None, settings: Settings | None = None,
             session_dir: str | None = None, env_delta: dict | None = None) -> WorkbenchApp:
    """The app factory tests use without the CLI. Bindings come from the keymap data."""
    app_class = type("WorkbenchApp", (WorkbenchApp,), {"BINDINGS": load_bindings()})  # a bad keymap fails first
    session = session_for(session_dir, name=os.path.basename(command[0]) if command else "session")
    engine = Engine(session, kb if kb is not None else load_knowledge_base(), settings or Settings())
    return app_class(command, engine, env_delta)


def run_app(command: list[str], layout: str | None = None, kb: KnowledgeBase | None = None,
            settings: Settings | None = None, session_dir: str | None = None, env_delta: dict | None = None) -> int:
    app = make_app(command, kb, settings, session_dir, env_delta)
    try:
        app.run()
    finally:
        app.engine.shutdown()  # the no-orphan promise holds whatever way the app ended
    return 0


__all__ = ["WorkbenchApp", "make_app", "run_app"]
