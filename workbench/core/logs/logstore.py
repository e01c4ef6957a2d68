"""Append-only log of one run: raw bytes on disk first, a line index, a bounded display tail.

Every byte the child writes is appended to the raw file before anything else looks at it, so
nothing is ever lost. Lines get absolute sequence numbers; any line is reachable by seq with
`pread` on the raw file, so scrollback is unlimited while memory stays flat.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections import deque
from pathlib import Path

from workbench.core.logs.linesplit import DEFAULT_LINE_CAP, LineSplitter
from workbench.core.logs.text import display_lines, display_text, fold_carriage_returns, sanitize

DEFAULT_TAIL_LINES = 20_000
# Every STRIDE-th line start is kept (8 bytes each): 10M lines cost 1.25 MB, not 80 MB; a line
# off the tail is found by re-splitting the raw bytes from the stride mark before it.
STRIDE = 64


class LogStore:
    def __init__(
        self,
        path: Path,
        tail_lines: int = DEFAULT_TAIL_LINES,
        line_cap: int = DEFAULT_LINE_CAP,
    ) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._read_fd = os.open(path, os.O_RDONLY)
        self._splitter = LineSplitter(line_cap)
        self._marks = array("Q")  # raw offset where lines 0, STRIDE, 2 * STRIDE, ... start
        self._count = 0
        self._complete_end = 0  # raw offset just past the last complete line
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.closed = False

    # -- writing (the reader thread) -------------------------------------------------------

    def append(self, data: bytes) -> tuple[int, list[str]]:
        """Write a chunk to the raw file, then index it."""
        _write_all(self._fd, data)
        first, lines, _text = self.ingest(data)
        return first, lines

    def ingest(self, data: bytes) -> tuple[int, list[str], str]:
        """Index a chunk that is already in the raw file (written by the pump); return
        (first_seq, display lines completed by it, the same lines joined by "\\n")."""
        self.bytes_written += len(data)
        starts, raw_lines = self._splitter.feed(data)
        return self._index(starts, raw_lines)

    def finish(self) -> tuple[int, list[str], str]:
        """End of stream: the unfinished last line becomes a line."""
        starts, raw_lines = self._splitter.flush()
        return self._index(starts, raw_lines)

    def _index(self, starts: list[int], raw_lines: list[bytes]) -> tuple[int, list[str], str]:
        text = display_text(raw_lines) if raw_lines else ""
        lines = text.split("\n") if raw_lines else []
        with self._lock:
            first = self._count
            if starts:
                self._marks.extend(starts[(-first) % STRIDE :: STRIDE])
                self._count += len(starts)
                self._complete_end = self._splitter.pending_start
                self._tail.extend(lines)
        return first, lines, text

    def release(self) -> None:
        """The stream is over: give back the file descriptors (a session relaunching hundreds
        of times must not run out); scrollback reopens the file when it needs it."""
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self._fd)
                os.close(self._read_fd)

    def close(self) -> None:
        self.release()

    # -- reading (any thread) --------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def partial(self) -> str:
        """The line being written right now (e.g. a progress bar), as it would show."""
        pending = self._splitter.pending
        if not pending:
            return ""
        return sanitize(fold_carriage_returns(pending.decode("utf-8", "replace")))

    def lines(self, start: int, stop: int) -> list[str]:
        """Display lines with seq in [start, stop)."""
        with self._lock:
            count = self._count
            stop = min(stop, count)
            start = max(0, start)
            if start >= stop:
                return []
            tail_first = count - len(self._tail)
            if start >= tail_first:
                return [self._tail[i - tail_first] for i in range(start, stop)]
            first_mark = start // STRIDE
            after = (stop - 1) // STRIDE + 1
            begin = self._marks[first_mark]
            end = self._marks[after] if after < len(self._marks) else self._complete_end
            if self.closed:  # a finished run gave its descriptor back: open the file for this read
                fd = os.open(self.path, os.O_RDONLY)
                try:
                    blob = os.pread(fd, end - begin, begin)
                finally:
                    os.close(fd)
            else:
                blob = os.pread(self._read_fd, end - begin, begin)
        # the same splitting as when the lines came in; a mark is always a line's start
        splitter = LineSplitter(self._splitter.cap)
        _starts, pieces = splitter.feed(blob)
        pieces += splitter.flush()[1]
        skip = start - first_mark * STRIDE
        return display_lines(pieces[skip : skip + stop - start])

    def line(self, seq: int) -> str:
        got = self.lines(seq, seq + 1)
        if not got:
            raise IndexError(seq)
        return got[0]

    def raw_bytes(self) -> bytes:
        return Path(self.path).read_bytes()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
