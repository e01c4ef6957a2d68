"""A run's log as a virtual view over its log store: unlimited scrollback, nothing copied.

Only the rows on screen are read (pread through the store's line index), so a pane costs the
same at ten lines or ten million. A filter keeps an index of the matching lines, extended a
bounded chunk per tick so a flood never stalls the UI.
"""

from __future__ import annotations

import re
import time
from array import array
from bisect import bisect_left, bisect_right

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.events import Click
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.core.engine.run import Run
from workbench.core.logs.prefix import GUTTER_WIDTH, ROLE_WIDTH, gutter, split_prefix

GUTTER = {"error": ("✖ ", "bold red"), "warning": ("▲ ", "yellow"), "info": ("• ", "cyan"), "benign": ("· ", "dim")}
LINE_STYLE = {"error": Style(color="red"), "warning": Style(color="yellow"), "benign": Style(dim=True)}
ROOT_STYLE = Style(color="white", bgcolor="dark_red", bold=True)
CURSOR_STYLE = Style(reverse=True)
SELECTED_STYLE = Style(bgcolor="grey30")
MATCH_STYLE = Style(bgcolor="yellow", color="black")
ROLE_STYLE = Style(color="cyan")
LEVEL_STYLE = {"W": Style(color="yellow", bold=True), "E": Style(color="red", bold=True),
               "C": Style(color="red", bold=True), "D": Style(dim=True), "I": Style(color="green")}
TIME_STYLE = Style(dim=True)
MAX_WIDTH = 2000  # cells shown of a line; the raw log keeps all of it
FILTER_CHUNK = 50_000  # lines tested against the filter per tick
WINDOW = 256  # rows read from the store at once
# Seconds between redraws for lines that merely arrived: under a flood, drawing at the UI
# timer's 20 Hz takes CPU from the server on a small machine; 10 Hz still reads as live.
ARRIVAL_FRAME = 0.1


def compile_pattern(text: str) -> re.Pattern[str]:
    """A regex if it compiles, else the literal text; case-insensitive unless it has capitals."""
    flags = 0 if any(c.isupper() for c in text) else re.IGNORECASE
    try:
        return re.compile(text, flags)
    except re.error:
        return re.compile(re.escape(text), flags)


class LogView(ScrollView, can_focus=True, inherit_bindings=False):
    DEFAULT_CSS = """
    LogView { background: $surface; scrollbar-gutter: stable; }
    LogView:focus { background-tint: $foreground 3%; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run: Run | None = None
        self.source = "output"  # or "plog": the Ascend per-process logs of the tree
        self.follow = True
        self.full_prefix = False  # False: vLLM's record prefix collapsed into a short gutter
        self.rows = 0  # rows in the view: store lines, or filter matches
        self._drawn_at = 0.0  # monotonic time of the last redraw for arrivals
        self.widest = 0
        self.cursor: int | None = None  # a row
        self.anchor: int | None = None  # selection start (row)
        self.search: re.Pattern[str] | None = None
        self.filter: re.Pattern[str] | None = None
        self.matches = array("Q")  # seqs that pass the filter
        self.filter_scanned = 0
        self._window_start = -1
        self._window: list[str] = []

    # -- what is shown ---------------------------------------------------------------------------

    @property
    def store(self):
        if self.run is None:
            return None
        return self.run.plog_store if self.source == "plog" else self.run.store

    @property
    def marks(self) -> dict[int, str]:
        if self.run is None:
            return {}
        diagnosis = self.run.plog_diagnosis if self.source == "plog" else self.run.diagnosis
        return diagnosis.marks if diagnosis is not None else {}

    def set_source(self, source: str) -> None:
        self.source = source
        self.show(self.run, keep_source=True)

    def show(self, run: Run | None, keep_source: bool = False) -> None:
        self.run = run
        if not keep_source:
            self.source = "output"
        self.cursor = self.anchor = None
        self.follow = True
        self.widest = 0
        self._reset_filter()
        self.sync()

    def _reset_filter(self) -> None:
        self.matches = array("Q")
        self.filter_scanned = 0
        # the window caches lines of the store shown before: a new run (or source) starts empty,
        # else its first rows would be read from the previous run's cached lines
        self._window_start = -1
        self._window = []
        self.rows = 0

    def set_filter(self, pattern: str | None) -> None:
        self.filter = compile_pattern(pattern) if pattern else None
        self._reset_filter()
        self.sync()

    def set_search(self, pattern: str | None) -> None:
        self.search = compile_pattern(pattern) if pattern else None
        self.refresh()

    def seq_of(self, row: int) -> int:
        return self.matches[row] if self.filter is not None else row

    def row_of(self, seq: int) -> int:
        if self.filter is None:
            return seq
        return min(bisect_left(self.matches, seq), max(len(self.matches) - 1, 0))

    def sync(self) -> None:
        """Called on the UI timer: take in new lines, keep the tail in view when following."""
        store = self.store
        total = len(store) if store is not None else 0
        if self.filter is not None and store is not None and self.filter_scanned < total:
            end = min(total, self.filter_scanned + FILTER_CHUNK)
            pattern = self.filter
            lines = store.lines(self.filter_scanned, end)
            self.matches.extend(self.filter_scanned + i for i, line in enumerate(lines) if pattern.search(line))
            self.filter_scanned = end
        rows = len(self.matches) if self.filter is not None else total
        if rows == self.rows and self.size.width and self.virtual_size.height == rows:
            if self.follow and self.scroll_y != self.max_scroll_y:  # resized, or a scrollbar came
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            return
        now = time.monotonic()
        if self.rows < rows and self.rows and now - self._drawn_at < ARRIVAL_FRAME:
            return  # more lines: they show on the next frame
        self._drawn_at = now
        if rows < self.rows:
            self._window_start = -1
        self.rows = rows
        self.virtual_size = Size(max(self.widest, self.size.width), rows)
        if self.follow:  # max_scroll_y leaves room for a horizontal scrollbar
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        self.refresh()

    def _line(self, seq: int) -> str:
        if not self._window_start <= seq < self._window_start + len(self._window):
            start = max(0, seq - WINDOW // 4)
            store = self.store
            assert store is not None
            self._window = store.lines(start, min(len(store), start + WINDOW))
            self._window_start = start
        return self._window[seq - self._window_start] if seq - self._window_start < len(self._window) else ""

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width  # never over the scrollbar or a border
        if self.store is None or row >= self.rows:
            return Strip.blank(width, self.rich_style)
        seq = self.seq_of(row)
        text = self._line(seq)[:MAX_WIDTH]
        head = None
        if not self.full_prefix:
            prefix = split_prefix(text)
            if prefix.message_start:
                head, text = prefix, text[prefix.message_start:]
        shown = len(text) + 2 + (GUTTER_WIDTH if head else 0)
        if shown > self.widest:
            self.widest = shown
            self.call_later(self._grow_width)
        severity = self.marks.get(seq, "")
        root = self.run.root_cause() if self.source == "output" else None
        line = Text(text, style=LINE_STYLE.get(severity, Style()), no_wrap=True, end="")
        if root is not None and root.first_seq == seq:
            line.stylize(ROOT_STYLE)
        if self.search is not None:
            for match in self.search.finditer(text):
                if match.end() > match.start():
                    line.stylize(MATCH_STYLE, match.start(), match.end())
        if self.anchor is not None and self.cursor is not None and min(self.anchor, self.cursor) <= row <= max(self.anchor, self.cursor):
            line.stylize(SELECTED_STYLE)
        if row == self.cursor:
            line.stylize(CURSOR_STYLE)
        mark, mark_style = GUTTER.get(severity, ("  ", ""))
        left = [Segment(mark, Style.parse(mark_style) if mark_style else None)]
        if head is not None:  # the gutter stays put while the message scrolls sideways
            cells = gutter(head)
            left += [Segment(cells[:ROLE_WIDTH], ROLE_STYLE), Segment(cells[ROLE_WIDTH], LEVEL_STYLE.get(head.level)),
                     Segment(cells[ROLE_WIDTH + 1:], TIME_STYLE)]
        used = 2 + (GUTTER_WIDTH if head is not None else 0)
        body = Strip(line.render(self.app.console), line.cell_len).crop_extend(scroll_x, scroll_x + max(0, width - used), self.rich_style)
        return Strip.join([Strip(left, used), body])

    def set_full_prefix(self, full: bool) -> None:
        self.full_prefix = full
        self.widest = 0
        self.refresh()

    def _grow_width(self) -> None:
        self.virtual_size = Size(max(self.widest, self.size.width), self.rows)

    # -- moving around ---------------------------------------------------------------------------

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        if follow:
            self.cursor = self.anchor = None
            self.scroll_to(y=self.max_scroll_y, animate=False)
        self.refresh()

    @property
    def visible_rows(self) -> int:
        """Rows of log on screen: the widget's height less a horizontal scrollbar."""
        return self.scrollable_content_region.height

    def move_cursor(self, delta: int) -> None:
        if self.rows == 0:
            return
        if self.cursor is None:
            self.cursor = min(self.rows - 1, int(self.scroll_offset.y) + self.visible_rows - 1)
        self.go_to_row(max(0, min(self.rows - 1, self.cursor + delta)))

    def page(self, direction: int) -> None:
        self.move_cursor(direction * max(1, self.visible_rows - 1))

    def go_to_row(self, row: int) -> None:
        self.follow = False
        self.cursor = row
        top = int(self.scroll_offset.y)
        if row < top or row >= top + self.visible_rows:
            self.scroll_to(y=max(0, row - self.visible_rows // 2), animate=False)
        self.refresh()

    def go_to_seq(self, seq: int) -> None:
        self.go_to_row(self.row_of(seq))

    def top(self) -> None:
        self.go_to_row(0)

    def toggle_selection(self) -> None:
        if self.anchor is not None:
            self.anchor = None
        else:
            if self.cursor is None:
                self.move_cursor(0)
            self.anchor = self.cursor
        self.refresh()

    def selected_text(self) -> str:
        """The selection, else the cursor line, else the last line."""
        store = self.store
        if store is None or self.rows == 0:
            return ""
        cursor = self.cursor if self.cursor is not None else self.rows - 1
        first, last = (cursor, cursor) if self.anchor is None else sorted((self.anchor, cursor))
        if self.filter is None:
            return "\n".join(store.lines(first, last + 1))
        return "\n".join(store.lines(self.seq_of(r), self.seq_of(r) + 1)[0] for r in range(first, last + 1))

    def next_marked(self, direction: int, severities: tuple[str, ...] = ("error",)) -> int | None:
        """The seq of the next (1) or previous (-1) line with one of these marks."""
        store = self.store
        if store is None:
            return None
        marked = sorted(s for s, sev in list(self.marks.items()) if sev in severities)
        here = self.seq_of(self.cursor) if self.cursor is not None else (len(store) if direction < 0 else -1)
        if direction > 0:
            i = bisect_right(marked, here)
            return marked[i] if i < len(marked) else None
        i = bisect_left(marked, here) - 1
        return marked[i] if i >= 0 else None

    def find(self, direction: int, chunk: int = 20_000, start_at_end: bool = False) -> int | None:
        """The seq of the next/previous line matching the search (scanning the store, not the
        screen); `start_at_end` scans from the first (last) line instead of the cursor."""
        store = self.store
        if store is None or self.search is None:
            return None
        total = len(store)
        here = self.seq_of(self.cursor) if self.cursor is not None and not start_at_end else (
            total if direction < 0 else -1)
        pattern = self.search
        if direction > 0:
            start = here + 1
            while start < total:
                lines = store.lines(start, min(total, start + chunk))
                for i, line in enumerate(lines):
                    if pattern.search(line):
                        return start + i
                start += len(lines) or chunk
        else:
            stop = here
            while stop > 0:
                start = max(0, stop - chunk)
                lines = store.lines(start, stop)
                for i in range(len(lines) - 1, -1, -1):
                    if pattern.search(lines[i]):
                        return start + i
                stop = start
        return None

    def on_click(self, event: Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < self.rows:
            self.go_to_row(row)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and self.follow and new < self.rows - self.visible_rows - 1:
            self.follow = False  # the user scrolled up: stop dragging them to the tail
