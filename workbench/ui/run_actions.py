"""What the keys do to runs: dump, profile, smoke, stop, kill, relaunch, eager, apply, record,
debug variables, typing into the pty, quitting."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

from textual import events, work

from workbench.core.cmdline import apply_arg_delta, has_flag, server_address, toggle_flag
from workbench.core.engine.run import Run
from workbench.core.knowledge.actions import first_fitting, free_port
from workbench.ui.layouts import load_layout
from workbench.ui.pane import FindingsList
from workbench.ui.panels import stacks_text
from workbench.ui.screens import (
    ConfirmScreen,
    DebugVarsScreen,
    PickScreen,
    TextScreen,
)

PROFILE_SECONDS = 10.0
KEYS_TO_CHILD = {"enter": b"\r", "tab": b"\t", "backspace": b"\x7f", "escape": b"\x1b", "up": b"\x1b[A",
                 "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D", "ctrl+c": b"\x03", "ctrl+d": b"\x04"}
LEAVE_TYPING = "ctrl+right_square_bracket"


class RunActions:
    """Actions on the focused run; mixed into the app."""

    @work(thread=True, exit_on_error=False, group="engine")
    def action_dump(self, native: bool = False, locals_: bool = False) -> None:
        run = self.current_run()
        if run is None or not run.alive:
            self.call_from_thread(self.note, "no live run to dump")
            return
        extra = " with native frames" if native else (" with locals" if locals_ else "")
        self.call_from_thread(self.note, f"dumping the stacks of {run.id}'s tree{extra}…")
        self.engine.dump_stacks(run.id, native=native, locals_=locals_, cause="key d" + extra)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_resume_stopped(self) -> None:
        """Resuming changes what is being debugged, so it is this explicit key, never a side effect."""
        run = self.current_run()
        resume = getattr(self.engine, "resume_stopped", None)
        if run is None or not run.alive or resume is None:
            self.call_from_thread(self.note, "no live local run to resume")
            return
        resume(run.id)

    def action_show_stacks(self) -> None:
        run = self.current_run()
        if run is not None:
            self.push_screen(TextScreen(stacks_text(self.engine.dumps.get(run.id, []), frames=30, stuck=run.stuck)))

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
        if run is not None and not run.alive:  # its port may be another run's by now
            self.call_from_thread(self.note, f"{run.id} is not running: no smoke sent (> shows another run)")
        elif run is not None:
            self.call_from_thread(self.note, f"smoke request to {run.id}…")
            self.engine.smoke(run.id)

    @work(thread=True, exit_on_error=False, group="engine")
    def action_stop(self) -> None:
        run = self.current_run()
        if run is not None and run.alive:
            self.call_from_thread(self.note, f"stopping {run.id} (PID {run.pid})…")
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
    def action_eager(self, same_port: bool = False) -> None:
        """The command again with --enforce-eager toggled, beside the first run: on a free port
        while the first keeps serving, or (same_port) on its port, after stopping it — said plainly."""
        run = self.current_run()
        if run is None:
            return
        argv = toggle_flag(run.spec.argv, "--enforce-eager")
        port = server_address(run.spec.argv)
        if run.alive and port is not None and not same_port:
            argv = apply_arg_delta(argv, {"--port": str(free_port())})
        elif run.alive:
            self.engine.stop(run.id, cause="key E: eager rerun on the same port")
            self.call_from_thread(self.note, f"stopped {run.id} to free port {port[1] if port else '?'} for the eager rerun")
        new = self.engine.launch(argv, run.spec.env_delta, run.spec.cwd, cause="key e: --enforce-eager toggled", parent=run.id)
        graph, eager = (run.id, new.id) if has_flag(argv, "--enforce-eager") else (new.id, run.id)
        where = f" on port {new.address[1]}" if new.address else ""
        self.call_from_thread(self.note, f"{new.id}: the {'eager' if has_flag(argv, '--enforce-eager') else 'graph'} "
                                         f"rerun of {run.id}{where}" + (f"; {run.id} keeps running" if run.alive else ""))
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
        action = first_fitting(finding.actions, run.spec.argv) if finding and run else None
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
        from workbench.core.record.recipe import recipe_from_run, recipe_toml
        from workbench.core.record.session import write_private

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

    def action_toggle_debug(self) -> None:
        if self.env_delta.get("VLLM_LOGGING_LEVEL") == "DEBUG":
            self.env_delta.pop("VLLM_LOGGING_LEVEL")
        else:
            self.env_delta["VLLM_LOGGING_LEVEL"] = "DEBUG"
        self.refresh_side()
        self.note("debug variables change on the next relaunch (r)")

    def action_debug_vars(self) -> None:
        self.push_screen(DebugVarsScreen(self.debug_vars, self.env_delta), lambda _: self.refresh_side())

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

    async def action_quit_workbench(self) -> None:
        self.note("stopping every run…")
        self.quit_in_worker()

    @work(thread=True, exit_on_error=False, group="quit")
    def quit_in_worker(self) -> None:
        self.engine.shutdown()
        self.call_from_thread(self.exit, 0)
