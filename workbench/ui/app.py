"""The TUI: runs in panes, their live logs, phases and findings, and the debugging moves one key away.

The app holds no state of its own beyond what is on screen: it issues engine commands from
thread workers and reads runs. Panes pull new lines from the log store on a 20 Hz timer.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from rich.markup import escape
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..core.cmdline import has_flag, toggle_flag
from ..core.compare import conclusion
from ..core.debugvars import DebugVar, load_debug_vars
from ..core.engine import Engine, session_for
from ..core.events import Message, Notice, ProfileRecorded, SmokeResult, StacksDumped, Verdict
from ..core.facade import EngineFacade
from ..core.gpu import gpu_memory_by_pid
from ..core.recipe import Recipe
from ..core.run import Run
from ..core.settings import Settings
from ..core.signatures import KnowledgeBase, load_knowledge_base
from .keymap import load_bindings
from .layouts import Layout, available_layouts, load_layout
from .logview import LogView
from .pane import FindingsList, RunPane
from .panels import debug_text, stacks_text, tree_text
from .screens import (
    ConfirmScreen,
    DebugVarsScreen,
    HelpScreen,
    PickScreen,
    PromptScreen,
    TextScreen,
)

REFRESH = 0.05  # seconds between pulls of new lines into the panes
SIDE_EVERY = 20  # ticks between side-panel refreshes (1 s)
HEADER_EVERY = 5  # ticks between header refreshes
PROFILE_SECONDS = 10.0
KEYS_TO_CHILD = {"enter": b"\r", "tab": b"\t", "backspace": b"\x7f", "escape": b"\x1b", "up": b"\x1b[A",
                 "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D", "ctrl+c": b"\x03", "ctrl+d": b"\x04"}
LEAVE_TYPING = "ctrl+right_square_bracket"


def clock() -> str:
    return time.strftime("%H:%M:%S")


class WorkbenchApp(App):
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
        from ..replay import attempts_table, run_matrix_on_engine

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

    @work(thread=True, exit_on_error=False, group="engine")
    def action_dump(self, native: bool = False, locals_: bool = False) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.call_from_thread(self.note, "no live run to dump")
            return
        extra = " with native frames" if native else (" with locals" if locals_ else "")
        self.call_from_thread(self.note, f"dumping the stacks of {run.id}'s tree{extra}…")
        self.engine.dump_stacks(run.id, native=native, locals_=locals_, cause="key d" + extra)

    def action_show_stacks(self) -> None:
        run = self.current_run()
        if run is not None:
            self.push_screen(TextScreen(stacks_text(self.engine.dumps.get(run.id, []), frames=30)))

    def action_profile(self) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.note("no live run to profile")
            return
        procs = sorted(run.sample_tree(), key=lambda p: -p.cpu_percent)
        choices = [(p.pid, f"{p.pid:>7}  {p.cpu_percent:5.0f}% CPU  {p.name}") for p in procs]
        self.push_screen(PickScreen(f"Profile which process of {run.id} for {PROFILE_SECONDS:.0f} s?", choices),
                         partial(self._profile_chosen, run.id))

    def _profile_chosen(self, run_id: str, pid: int | None) -> None:
        if pid is not None:
            self.note(f"profiling PID {pid} for {PROFILE_SECONDS:.0f} s…")
            self.profile_in_worker(run_id, pid)

    @work(thread=True, exit_on_error=False, group="profile")
    def profile_in_worker(self, run_id: str, pid: int) -> None:
        try:
            self.engine.profile(run_id, pid, PROFILE_SECONDS)
        except (ValueError, KeyError) as exc:
            self.call_from_thread(self.note, str(exc))

    @work(thread=True, exit_on_error=False, group="engine")
    def action_smoke(self) -> None:
        run = self.current_run()
        if run is not None:
            self.call_from_thread(self.note, f"smoke request to {run.id}…")
            self.engine.smoke(run.id)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_stop(self) -> None:
        run = self.current_run()
        if run is not None and run.alive:
            used, survivors = self.engine.stop(run.id, cause="key x")
            self.call_from_thread(self.note, f"{run.id} stopped ({used})" + (f", survivors {survivors}" if survivors else ""))

    def action_kill(self) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.note("no live run to kill")
            return
        self.push_screen(ConfirmScreen(f"SIGKILL every process of {run.id} (PID {run.pid}) now?"),
                         partial(self._kill_confirmed, run.id))

    def _kill_confirmed(self, run_id: str, yes: bool | None) -> None:
        if yes:
            self.kill_in_worker(run_id)
        else:
            self.note("kill cancelled")

    @work(thread=True, exit_on_error=False, group="engine")
    def kill_in_worker(self, run_id: str) -> None:
        used, _ = self.engine.stop(run_id, kill=True, cause="key K: kill")
        self.call_from_thread(self.note, f"{run_id} killed ({used})")

    @work(thread=True, exit_on_error=False, group="engine")
    def action_relaunch(self) -> None:
        run = self.current_run()
        if run is None:
            return
        index = self.focus_index
        env = {k: self.env_delta.get(k) for k in set(run.spec.env_delta) | set(self.env_delta)}
        new = self.engine.relaunch(run.id, env_delta=env, cause="key r: relaunch")
        self.call_from_thread(self.place_run, new, index)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_eager(self) -> None:
        run = self.current_run()
        if run is None:
            return
        argv = toggle_flag(run.spec.argv, "--enforce-eager")
        if run.alive:
            self.engine.stop(run.id, cause="key e: eager rerun")  # the port and the device are exclusive
        new = self.engine.launch(argv, run.spec.env_delta, run.spec.cwd, cause="key e: --enforce-eager toggled", parent=run.id)
        graph, eager = (run.id, new.id) if has_flag(argv, "--enforce-eager") else (new.id, run.id)
        self.call_from_thread(self._show_pair, run.id, new, (graph, eager))

    async def _show_pair(self, old_id: str, new: Run, pair: tuple[str, str]) -> None:
        self.pair = pair
        if self.layout_spec.panes < 2:
            self.pane_runs[0] = old_id
            await self.set_layout(load_layout("compare"))
        old_index = self.pane_runs.index(old_id) if old_id in self.pane_runs else 0
        self.place_run(new, (old_index + 1) % len(self.pane_runs))

    @work(thread=True, exit_on_error=False, group="engine")
    def action_apply_action(self) -> None:
        run = self.current_run()
        selected = self._selected_finding()
        finding = selected or (run.root_cause() if run else None)
        action = next((a for a in finding.actions if a.applicable), None) if finding else None
        if run is None or finding is None or action is None:
            self.call_from_thread(self.note, "no machine-applicable action for this finding")
            return
        index = self.focus_index
        env = {k: (None if v is False else ("1" if v is True else v)) for k, v in action.env_delta.items()}
        new = self.engine.relaunch(run.id, env, dict(action.arg_delta), cause=f"key a: {finding.id}: {action.text}")
        self.call_from_thread(self.place_run, new, index)

    def _selected_finding(self):
        for findings in self.pane.query(FindingsList):
            if findings.has_focus:
                return findings.selected()
        return None

    def on_option_list_option_selected(self, event: FindingsList.OptionSelected) -> None:
        if isinstance(event.option_list, FindingsList):
            finding = event.option_list.selected()
            if finding is not None:
                self.log_view.go_to_seq(finding.first_seq)
                self.log_view.focus()

    def action_record(self) -> None:
        """Write the focused run as a recipe in the current directory (secrets as names only)."""
        from ..core.recipe import recipe_from_run, recipe_toml
        from ..core.session import write_private

        run = self.current_run()
        if run is None:
            return
        root = run.root_cause()
        expect = root.id if root is not None else (run.verdict or "healthy")
        name = f"{run.id}-{time.strftime('%Y%m%d-%H%M%S')}"
        recipe = recipe_from_run(name, run.spec.argv, run.spec.env_delta, run.spec.cwd or os.getcwd(),
                                 description=f"recorded in the TUI ({run.spec.cause})", expect=expect)
        path = write_private(Path(f"recipe-{name}.toml"), recipe_toml(recipe))
        self.note(f"recipe written: {path} (workbench replay {path} --headless)")

    # -- debug variables ---------------------------------------------------------------------------

    def action_toggle_debug(self) -> None:
        if self.env_delta.get("VLLM_LOGGING_LEVEL") == "DEBUG":
            self.env_delta.pop("VLLM_LOGGING_LEVEL")
        else:
            self.env_delta["VLLM_LOGGING_LEVEL"] = "DEBUG"
        self.refresh_side()
        self.note("debug variables change on the next relaunch (r)")

    def action_debug_vars(self) -> None:
        self.push_screen(DebugVarsScreen(self.debug_vars, self.env_delta), lambda _: self.refresh_side())

    # -- talking to the child ------------------------------------------------------------------------

    def action_talk(self) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.note("no live run to type into")
            return
        self.typing_into = run.id
        self.pane.add_class("typing")
        self.note(f"keys go to {run.id}'s terminal; ctrl+] gives them back")

    def stop_typing(self) -> None:
        self.typing_into = None
        for pane in self.panes:
            pane.remove_class("typing")
        self.note("keys are the workbench's again")

    def _on_key(self, event: events.Key) -> None:
        """While typing into a run, every key goes to its pty. App._on_key (after this one, down
        the MRO) is where bindings fire, so preventing the default keeps them out of it."""
        if self.typing_into is None:
            return
        event.prevent_default()
        event.stop()
        if event.key == LEAVE_TYPING:
            self.stop_typing()
            return
        data = KEYS_TO_CHILD.get(event.key) or (event.character.encode() if event.character else b"")
        if data:
            try:
                self.engine.send_input(self.typing_into, data)
            except (ValueError, KeyError, OSError) as exc:
                self.stop_typing()
                self.note(str(exc))

    # -- the log -----------------------------------------------------------------------------------

    def action_search(self) -> None:
        current = self.log_view.search.pattern if self.log_view.search else ""
        self.push_screen(PromptScreen("Search (regex):", current), self._search_entered)

    def _search_entered(self, text: str | None) -> None:
        if text is None:
            return
        self.log_view.set_search(text or None)
        if text:
            self.action_search_next()

    def action_search_next(self) -> None:
        self._find(1)

    def action_search_prev(self) -> None:
        self._find(-1)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _find(self, direction: int) -> None:
        view = self.log_view
        if view.search is None:
            self.call_from_thread(self.note, "no search: press /")
            return
        seq = view.find(direction)
        if seq is None:
            self.call_from_thread(self.note, f"no {'further' if direction > 0 else 'earlier'} match for {view.search.pattern!r}")
        else:
            self.call_from_thread(view.go_to_seq, seq)

    def action_filter(self) -> None:
        current = self.log_view.filter.pattern if self.log_view.filter else ""
        self.push_screen(PromptScreen("Show only lines matching (empty: all):", current), self._filter_entered)

    def _filter_entered(self, text: str | None) -> None:
        if text is not None:
            self.log_view.set_filter(text or None)
            self.note(f"filter: {text}" if text else "filter off")

    def action_next_error(self) -> None:
        self._jump(self.log_view.next_marked(1), "no later error")

    def action_prev_error(self) -> None:
        self._jump(self.log_view.next_marked(-1), "no earlier error")

    def action_root_cause(self) -> None:
        run = self.current_run()
        root = run.root_cause() if run else None
        self._jump(root.first_seq if root else None, "no root cause (yet)")

    def _jump(self, seq: int | None, otherwise: str) -> None:
        if seq is None:
            self.note(otherwise)
        else:
            self.log_view.go_to_seq(seq)

    def action_plog(self) -> None:
        run = self.current_run()
        view = self.log_view
        if view.source == "plog":
            view.set_source("output")
            self.note("showing the server's output")
        elif run is not None and run.plog_store is not None:
            view.set_source("plog")
            self.note(f"showing the Ascend plog of {run.id}'s processes (P: back)")
        else:
            self.note("no plog for this run (CANN writes it on Ascend: ~/ascend/log or $ASCEND_PROCESS_LOG_PATH)")

    def action_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self.note("following the tail" if self.log_view.follow else "paused: the log stays where it is")

    def action_cursor(self, delta: int) -> None:
        self.log_view.move_cursor(delta)

    def action_page(self, direction: int) -> None:
        self.log_view.page(direction)

    def action_log_top(self) -> None:
        self.log_view.top()

    def action_tail(self) -> None:
        self.log_view.set_follow(True)

    def action_select(self) -> None:
        self.log_view.toggle_selection()

    def action_copy(self) -> None:
        text = self.log_view.selected_text()
        if text:
            self.copy_to_clipboard(text)
            self.note(f"copied {text.count(chr(10)) + 1} line(s) (OSC 52)")

    # -- help, palette, quit -------------------------------------------------------------------------

    def binding_rows(self) -> list[tuple[str, str, str]]:
        return [(b.key, b.description, b.tooltip) for b in self.BINDINGS if isinstance(b, Binding)]

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.binding_rows()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                yield SystemCommand(f"{binding.description} ({binding.key})", binding.tooltip,
                                    partial(self.run_action, binding.action))
        for name in sorted(available_layouts()):
            yield SystemCommand(f"Layout: {name}", "switch the pane arrangement", partial(self._layout_by_name, name))
        yield from super().get_system_commands(screen)

    async def _layout_by_name(self, name: str) -> None:
        await self.set_layout(load_layout(name))

    async def action_quit_workbench(self) -> None:
        self.note("stopping every run…")
        self.quit_in_worker()

    @work(thread=True, exit_on_error=False, group="quit")
    def quit_in_worker(self) -> None:
        self.engine.shutdown()
        self.call_from_thread(self.exit, 0)

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
        for pane in self.panes:
            run = self.engine.runs.get(pane.run_id) if pane.run_id else None
            if run is None:
                continue
            pane.log.sync()
            if self.tick % HEADER_EVERY == 0:
                pane.refresh_header(run, self.tick // HEADER_EVERY)
        if self.tick % SIDE_EVERY == 0:
            self.refresh_side()

    def refresh_side(self) -> None:
        if self._relayout:
            return
        gpu = None
        for pane in self.panes:
            run = self.engine.runs.get(pane.run_id) if pane.run_id else None
            pane.refresh_side(run, self.tick // HEADER_EVERY)
            pane.set_panel("debug", debug_text(self.env_delta, run, self.debug_vars))
            if run is not None and pane.has_panel("tree"):
                gpu = gpu if gpu is not None else gpu_memory_by_pid()
                pane.set_panel("tree", tree_text(run, gpu))
            if run is not None and pane.has_panel("stacks"):
                pane.set_panel("stacks", stacks_text(self.engine.dumps.get(run.id, [])))
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
    try:
        app.run()
    finally:
        app.engine.shutdown()  # the no-orphan promise holds whatever way the app ended
    return 0


__all__ = ["WorkbenchApp", "make_app", "run_app"]
