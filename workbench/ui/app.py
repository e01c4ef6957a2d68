"""The TUI: runs in panes, their live logs, phases and findings, and the debugging moves one key away.

The app holds no state of its own beyond what is on screen: it issues engine commands from
thread workers and reads runs. Panes pull new lines from the log store on a 20 Hz timer.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from workbench.core.engine.engine import Engine, session_for
from workbench.core.engine.events import (
    Message,
    Notice,
    ProfileRecorded,
    SmokeResult,
    StacksDumped,
    Verdict,
    VerdictChanged,
)
from workbench.core.engine.facade import EngineFacade
from workbench.core.engine.run import Run
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.compare import conclusion
from workbench.core.knowledge.signatures import KnowledgeBase, load_knowledge_base
from workbench.core.probes.gpu import gpu_memory_by_pid
from workbench.core.record.debugvars import DebugVar, load_debug_vars
from workbench.core.record.recipe import Recipe
from workbench.ui.debug_actions import BesideActions
from workbench.ui.keymap import load_bindings
from workbench.ui.layouts import Layout, available_layouts, load_layout
from workbench.ui.log_actions import LogActions
from workbench.ui.logview import LogView
from workbench.ui.metrics_panel import PerfActions
from workbench.ui.pane import RunPane
from workbench.ui.panels import debug_text, hung_text, stacks_text, tree_text
from workbench.ui.run_actions import RunActions
from workbench.ui.screens import HelpScreen, human_key
from workbench.ui.screenshot import Screenshots

REFRESH = 0.05  # seconds between pulls of new lines into the panes
SIDE_EVERY = 20  # ticks between side-panel refreshes (1 s)
HEADER_EVERY = 5  # ticks between header refreshes


def clock() -> str:
    return time.strftime("%H:%M:%S")


class WorkbenchApp(Screenshots, PerfActions, RunActions, BesideActions, LogActions, App):
    CSS_PATH = str(Path(__file__).resolve().parent / "app.tcss")
    TITLE = "vLLM Workbench"

    def __init__(self, command: list[str], engine: EngineFacade, env_delta: dict | None = None,
                 layout: Layout | None = None, debug_vars: list[DebugVar] | None = None,
                 launch: bool = True, matrix: tuple[Recipe, str | None] | None = None) -> None:
        super().__init__()
        self.command = command
        self.matrix = matrix  # (recipe, python): run its isolation matrix instead of the command
        self.matrix_text: str | None = None
        self._relayout = False
        self.engine = engine
        self.env_delta: dict[str, str | None] = dict(env_delta or {})
        self.layout_spec = layout or load_layout("single")
        self.debug_vars = debug_vars if debug_vars is not None else load_debug_vars()
        self.launch_on_mount = launch
        self.runs: list[str] = []
        self.pane_runs: list[str | None] = [None] * self.layout_spec.panes
        self.focus_index = 0
        self.tick = 0
        self.typing_into: str | None = None
        self.messages: list[str] = []
        self.pair: tuple[str, str] | None = None  # (graph run, eager run) for the conclusion line
        self.events: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self.engine.bus.subscribe(self.events.put)

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            for index in range(self.layout_spec.panes):
                yield RunPane(index, self.layout_spec)
        yield Static(id="conclusion")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self._after_layout()
        if self.matrix is not None:
            self.run_matrix(*self.matrix)
        elif self.launch_on_mount and self.command:
            self.launch(self.command, self.env_delta, "launch")
        self.set_interval(REFRESH, self.refresh_view)
        self.start_metrics()

    def _after_layout(self) -> None:
        self.focus_index = min(self.focus_index, len(self.panes) - 1)
        for pane, run_id in zip(self.panes, self.pane_runs, strict=True):
            pane.show(self.engine.runs.get(run_id) if run_id else None)
        self._mark_focus()
        self.refresh_side()
        self.query_one("#conclusion", Static).display = False

    @property
    def panes(self) -> list[RunPane]:
        return list(self.query(RunPane))

    @property
    def pane(self) -> RunPane:
        return self.panes[self.focus_index]

    @property
    def log_view(self) -> LogView:
        return self.pane.log

    def _mark_focus(self) -> None:
        for pane in self.panes:
            pane.set_class(pane.index == self.focus_index, "focused")
        self.log_view.focus()

    async def set_layout(self, layout: Layout) -> None:
        keep = [r for r in self.pane_runs if r] or self.runs[-1:]
        self.layout_spec = layout
        self.pane_runs = (keep + [None] * layout.panes)[: layout.panes]
        self._relayout = True  # the panes exist before their children do: timers keep off
        try:
            await self.recompose()
        finally:
            self._relayout = False
        self._after_layout()
        self.note(f"layout {layout.name}: {layout.description}")

    # -- runs and panes --------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="engine")
    def launch(self, argv: list[str], env_delta: dict, cause: str) -> None:
        run = self.engine.launch(argv, env_delta, cause=cause)
        self.call_from_thread(self.place_run, run, self.focus_index)

    @work(thread=True, exit_on_error=False, group="matrix")
    def run_matrix(self, recipe: Recipe, python: str | None) -> None:
        """The recipe's base and variants one after another in the focused pane; the table
        fills as runs end, then the conclusion."""
        from workbench.faces.replay import attempts_table, run_matrix_on_engine

        def shown(run: Run) -> None:
            self.call_from_thread(self.place_run, run, self.focus_index)
            self.call_from_thread(self.note, f"matrix: {run.spec.label} is {run.id}")

        def progress(attempts: list) -> None:
            self.call_from_thread(self.show_matrix, attempts_table(attempts), None)

        attempts, verdict = run_matrix_on_engine(self.engine, recipe, python, shown, progress,
                                                 cancelled=lambda: self.engine.closed or not self.is_running)
        if attempts and not self.engine.closed:
            self.call_from_thread(self.show_matrix, attempts_table(attempts), verdict)

    def show_matrix(self, table: str, verdict: str | None) -> None:
        self.matrix_text = table + (f"conclusion: {verdict}" if verdict else "running the next variant…")
        if verdict:
            self.note(f"matrix: {verdict}")
        self._refresh_conclusion()

    def place_run(self, run: Run, pane_index: int) -> None:
        if run.id not in self.runs:
            self.runs.append(run.id)
        pane_index = min(pane_index, len(self.pane_runs) - 1)
        self.pane_runs[pane_index] = run.id
        if self._relayout:
            return  # shown when the new panes are composed
        self.panes[pane_index].show(run)
        self.refresh_side()

    def current_run(self) -> Run | None:
        run_id = self.pane_runs[self.focus_index] if self.focus_index < len(self.pane_runs) else None
        return self.engine.runs.get(run_id) if run_id else None

    def note(self, text: str) -> None:
        self.messages = [*self.messages[-30:], f"{clock()} {text}"]
        self.query_one("#status", Static).update(escape(self.messages[-1]))
        for pane in self.panes:
            pane.set_panel("notes", "[b]Notes[/b]\n" + escape("\n".join(self.messages[-8:])))

    def action_next_pane(self) -> None:
        self.focus_index = (self.focus_index + 1) % len(self.panes)
        self._mark_focus()

    def action_next_run(self) -> None:
        if not self.runs:
            return
        current = self.pane_runs[self.focus_index]
        index = (self.runs.index(current) + 1) % len(self.runs) if current in self.runs else 0
        self.place_run(self.engine.runs[self.runs[index]], self.focus_index)

    async def action_next_layout(self) -> None:
        names = sorted(available_layouts())
        if not names:
            return
        index = (names.index(self.layout_spec.name) + 1) % len(names) if self.layout_spec.name in names else 0
        await self.set_layout(load_layout(names[index]))

    # -- engine commands (blocking: thread workers) ------------------------------------------------


















    # -- debug variables ---------------------------------------------------------------------------



    # -- talking to the child ------------------------------------------------------------------------




    # -- the log -----------------------------------------------------------------------------------




















    # -- help, palette, quit -------------------------------------------------------------------------

    def binding_rows(self) -> list[tuple[str, str, str]]:
        return [(b.key, b.description, b.tooltip) for b in self.BINDINGS if isinstance(b, Binding)]

    def action_help(self) -> None:
        if not self.is_screen_installed("help"):  # built on first use, then only shown
            self.install_screen(HelpScreen(self.binding_rows()), "help")
        self.push_screen("help")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                yield SystemCommand(f"{binding.description} ({human_key(binding.key)})", binding.tooltip,
                                    partial(self.run_action, binding.action))
        for name in sorted(available_layouts()):
            yield SystemCommand(f"Layout: {name}", "switch the pane arrangement", partial(self._layout_by_name, name))
        yield from super().get_system_commands(screen)

    async def _layout_by_name(self, name: str) -> None:
        await self.set_layout(load_layout(name))



    # -- the view --------------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        if not self.is_running or not self.screen_stack or self._relayout:
            return
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            self._on_engine_event(event)
        self.tick += 1
        if getattr(self.screen, "covers", False):
            return  # an opaque screen is up: the panes draw when it goes
        for pane in self.panes:
            run = self.engine.runs.get(pane.run_id) if pane.run_id else None
            if run is None:
                continue
            pane.log.sync()
            if self.tick % HEADER_EVERY == 0:
                pane.refresh_header(run, self.tick // HEADER_EVERY, self.metrics_summary(run.id))
        if self.tick % SIDE_EVERY == 0:
            self.refresh_side()

    def refresh_side(self) -> None:
        if self._relayout:
            return
        gpu = None
        for pane in self.panes:
            run = self.engine.runs.get(pane.run_id) if pane.run_id else None
            stuck = hung_text(run, self.engine.dumps.get(run.id, [])) if run is not None else ""
            pane.refresh_side(run, self.tick // HEADER_EVERY, stuck)
            pane.set_panel("debug", debug_text(self.env_delta, run, self.debug_vars))
            if run is not None and pane.has_panel("tree"):
                gpu = gpu if gpu is not None else gpu_memory_by_pid()
                pane.set_panel("tree", tree_text(run, gpu))
            if run is not None and pane.has_panel("stacks"):
                pane.set_panel("stacks", stacks_text(self.engine.dumps.get(run.id, []), stuck=run.stuck))
        self._refresh_conclusion()

    def _refresh_conclusion(self) -> None:
        widget = self.query_one("#conclusion", Static)
        if self.matrix_text is not None:
            widget.update(escape(self.matrix_text))
            widget.display = True
            return
        if self.pair is None:
            widget.display = False
            return
        first, second = (self.engine.runs.get(r) for r in self.pair)
        if first is None or second is None:
            return
        status = f"[b]{first.id}[/b] graph: {first.verdict or '…'}   [b]{second.id}[/b] eager: {second.verdict or '…'}"
        if first.verdict and second.verdict:
            status += "   → " + escape(conclusion(first.summary(), second.summary(), first.id, second.id))
        widget.update(status)
        widget.display = True

    def _on_engine_event(self, event: Message) -> None:
        if isinstance(event, StacksDumped):
            self.note(f"stacks dumped: {event.summary}; o shows them ({Path(event.path).name})")
            self.refresh_side()
        elif isinstance(event, SmokeResult):
            self.note(f"smoke {event.status} in {event.latency or 0:.2f}s: {event.output[:40] or event.error[:60]}")
        elif isinstance(event, ProfileRecorded):
            if event.error:
                self.note(f"profile of PID {event.pid} failed: {event.error}")
            else:
                self.note(f"profile of PID {event.pid}: {event.samples} samples; {Path(event.svg).name} and speedscope saved")
        elif isinstance(event, Verdict):
            self.note(f"{event.run}: verdict {event.verdict}")
            self.refresh_side()
        elif isinstance(event, VerdictChanged):  # after ready: say it at once, loudly
            self.note(f"{event.run}: verdict {event.previous} → {event.verdict}: {event.reason}")
            self.notify(f"{event.run}: {event.verdict.upper()} — {event.reason}", title="verdict changed",
                        severity="error", timeout=30)
            for pane in self.panes:
                if pane.run_id == event.run:
                    pane.refresh_header(self.engine.runs.get(event.run))
            self.refresh_side()
        elif isinstance(event, Notice):
            self.note(event.text)


def make_app(command: list[str], kb: KnowledgeBase | None = None, settings: Settings | None = None,
             session_dir: str | None = None, env_delta: dict | None = None, layout: str = "single",
             launch: bool = True, matrix: tuple[Recipe, str | None] | None = None) -> WorkbenchApp:
    """The app factory tests use without the CLI. Bindings, layouts and debug variables come
    from data; a bad file fails here, before anything is launched."""
    app_class = type("WorkbenchApp", (WorkbenchApp,), {"BINDINGS": load_bindings()})
    chosen = load_layout(layout)
    debug_vars = load_debug_vars()
    name = os.path.basename(command[0]) if command else (matrix[0].name if matrix else "session")
    session = session_for(session_dir, name=name)
    engine = Engine(session, kb if kb is not None else load_knowledge_base(), settings or Settings())
    return app_class(command, engine, env_delta, chosen, debug_vars, launch, matrix)


def run_app(command: list[str], layout: str | None = None, kb: KnowledgeBase | None = None,
            settings: Settings | None = None, session_dir: str | None = None, env_delta: dict | None = None,
            matrix: tuple[Recipe, str | None] | None = None) -> int:
    app = make_app(command, kb, settings, session_dir, env_delta, layout or "single", matrix=matrix)
    # started under nohup (or from a script that ignores it), a TUI whose terminal closes would
    # live on unseen and keep its servers: a hangup ends it and the reaper stops the runs
    if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        app.run()
    finally:
        app.engine.shutdown()  # the no-orphan promise holds whatever way the app ended
    return 0


__all__ = ["WorkbenchApp", "make_app", "run_app"]
