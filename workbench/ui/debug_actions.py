"""Keys beside the run: relaunch under debugpy (and back), and the issue search for a finding."""

from __future__ import annotations

from rich.markup import escape
from textual import work

from workbench.core.engine.debugger import (
    SINGLE_PROCESS_ENV,
    DebugLaunchError,
    debug_port_of,
    free_local_port,
    plan_debug_run,
    without_debugpy,
)
from workbench.core.knowledge.community import CONTEXT, community_search
from workbench.ui.screens import TextScreen


class BesideActions:
    """Mixed into the app, like RunActions."""

    @work(thread=True, exit_on_error=False, group="engine")
    def action_debugpy(self) -> None:
        run = self.current_run()
        if run is None:
            return
        index = self.focus_index
        if debug_port_of(run.spec.argv) is not None:  # the toggle: back to the plain command
            env = {k: v for k, v in run.spec.env_delta.items() if k not in SINGLE_PROCESS_ENV}
            if run.alive:
                self.engine.stop(run.id, cause="key B: leave debugpy")
            new = self.engine.launch(without_debugpy(run.spec.argv), env, run.spec.cwd, run.spec.label,
                                     cause="key B: without debugpy", parent=run.id)
            self.call_from_thread(self.place_run, new, index)
            return
        try:
            plan = plan_debug_run(run.spec.argv, free_local_port(), cwd=run.spec.cwd)
        except DebugLaunchError as exc:
            self.call_from_thread(self.note, f"cannot debug {run.id}: {exc}")
            return
        if run.alive:
            self.engine.stop(run.id, cause="key B: relaunch under debugpy")
        new = self.engine.launch(plan.argv, {**run.spec.env_delta, **plan.env_delta}, run.spec.cwd, run.spec.label,
                                 cause=f"key B: under debugpy on port {plan.port}", parent=run.id)
        page = (f"[b]{new.id} runs under debugpy on 127.0.0.1:{plan.port}[/b]\n"
                f"VLLM_ENABLE_V1_MULTIPROCESSING=0: the engine runs in the API server's process.\n\n"
                f"From your machine:\n  {escape(plan.ssh_line())}\n\n"
                f"Then attach with this .vscode/launch.json:\n{escape(plan.launch_json())}\n\n"
                "A paused run is called paused in the debugger, not hung. Press B again to leave debugpy.")
        self.call_from_thread(self.place_run, new, index)
        self.call_from_thread(self.note, f"{new.id}: debugpy on port {plan.port}: {plan.ssh_line()}")
        self.call_from_thread(self.push_screen, TextScreen(page))

    def action_issue_search(self) -> None:
        run = self.current_run()
        finding = self._selected_finding() or (run.root_cause() if run else None)
        if run is None or finding is None:
            self.note("no finding to search for")
            return
        start = max(0, finding.first_seq - CONTEXT)
        lines = run.store.lines(start, min(len(run.store), finding.first_seq + CONTEXT + 1))
        search = community_search(finding.line, lines, finding.first_seq - start, finding.platform)
        self.copy_to_clipboard("\n".join([search.phrase, *search.urls.values()]))
        self.note(f"copied the issue search for {finding.id} (OSC 52): {search.phrase}")
        self.push_screen(TextScreen(escape(search.text())))
