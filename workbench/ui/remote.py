"""The TUI as an attach client: the same app, driven by a `RemoteEngine` instead of a local one.

Each client keeps its own panes, scroll position, focus, search and filters (they are the
app's); runs started by anyone appear in the focused pane, and the shared timeline (who did
what, who joined) shows in the notes. Quitting detaches: the session and its runs go on.
"""

from __future__ import annotations

import sys
import time

from textual import work

from workbench.core.engine.events import ActionTaken, ClientPresence, Message, RunStarted
from workbench.core.record.debugvars import load_debug_vars
from workbench.core.remote.attach_client import AttachClient, resolve_live
from workbench.core.remote.remote_engine import RemoteEngine
from workbench.ui.app import WorkbenchApp
from workbench.ui.keymap import load_bindings
from workbench.ui.layouts import load_layout
from workbench.ui.screens import DebugVarsScreen


class RemoteWorkbenchApp(WorkbenchApp):
    engine: RemoteEngine

    def _on_engine_event(self, event: Message) -> None:
        if isinstance(event, RunStarted):
            run = self.engine.runs.get(event.run)
            if run is not None and event.run not in self.runs:
                self.place_run(run, self.focus_index)
                self.note(f"{event.run} started ({event.cause})")
        elif isinstance(event, ActionTaken):
            self.note(f"{event.user}@{event.tty}: {event.detail}")
        elif isinstance(event, ClientPresence):
            self.note(f"{event.user}@{event.tty} {'attached' if event.joined else 'left'} ({event.role})")
        else:
            super()._on_engine_event(event)

    def action_toggle_debug(self) -> None:
        before = dict(self.env_delta)
        super().action_toggle_debug()
        self._share_env_change(before)

    def action_debug_vars(self) -> None:
        before = dict(self.env_delta)

        def closed(_result: object) -> None:
            self.refresh_side()
            self._share_env_change(before)

        self.push_screen(DebugVarsScreen(self.debug_vars, self.env_delta), closed)

    @work(thread=True, exit_on_error=False, group="timeline")
    def _share_env_change(self, before: dict[str, str | None]) -> None:
        run = self.current_run()
        self.engine.record_env_change(run.id if run else "", before, dict(self.env_delta))

    async def action_quit_workbench(self) -> None:
        self.note("detaching: the session and its runs go on")
        self.quit_in_worker()


def make_remote_app(engine: RemoteEngine, name: str, layout: str = "single") -> RemoteWorkbenchApp:
    app_class = type("RemoteWorkbenchApp", (RemoteWorkbenchApp,), {"BINDINGS": load_bindings()})
    app = app_class([], engine, None, load_layout(layout), load_debug_vars(), False)
    runs = list(engine.runs)
    app.runs = runs
    panes = len(app.pane_runs)
    app.pane_runs = (runs[-panes:] + [None] * panes)[:panes]
    role = "control" if engine.control else "read-only: attach with --control to drive it"
    app.sub_title = f"{name} (attached, {role}; q detaches)"
    app.messages = [f"{time.strftime('%H:%M:%S', time.localtime(a.time))} {a.user}@{a.tty}: {a.detail}"
                    for a in engine.client.snapshot().timeline][-30:]  # the timeline so far
    return app


def run_remote_app(session: str | None, control: bool = False, layout: str | None = None) -> int:
    live = resolve_live(session)
    engine = RemoteEngine(AttachClient(live.socket, control=control)).connect()
    app = make_remote_app(engine, live.name, layout or "single")
    try:
        app.run()
    finally:
        engine.shutdown()  # detach only
    if engine.client.closed.is_set() and engine.client.bye_reason:
        sys.stdout.write(f"the session ended: {engine.client.bye_reason}\n")
    return 0
