"""What the keys do to the log view: search, filter, error jumps, plog, following, the cursor,
selection and copy."""

from __future__ import annotations

from textual import work

from workbench.ui.screens import PromptScreen
from workbench.ui.search import match_position


class LogActions:
    """Actions on the focused pane's log view; mixed into the app."""

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
        seq, wrapped = view.find(direction), False
        if seq is None:  # past the last (first) match: go round from the other end
            seq, wrapped = view.find(direction, start_at_end=True), True
        if seq is None:
            self.call_from_thread(self.note, f"no match for {view.search.pattern!r}")
            return
        number, total = match_position(view.store, view.search, seq)
        where = " (wrapped to the " + ("top" if direction > 0 else "bottom") + ")" if wrapped else ""
        self.call_from_thread(view.go_to_seq, seq)
        self.call_from_thread(self.note, f"match {number}/{total} for {view.search.pattern!r}{where}"
                              " · n next, N previous")

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
        self.note("following the tail" if self.log_view.follow else "paused: the log stays where it is (f or G follows again)")

    def action_toggle_prefix(self) -> None:
        full = not self.log_view.full_prefix
        for pane in self.panes:  # every pane alike: compared lines line up
            pane.log.set_full_prefix(full)
        self.note("full record prefix shown (F: short gutter)" if full else "record prefix collapsed: role, level, time (F: full)")

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
