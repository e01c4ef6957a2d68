"""Split a byte stream into lines with absolute offsets, never buffering without bound."""

from __future__ import annotations

from itertools import accumulate, repeat
from operator import add

DEFAULT_LINE_CAP = 64 * 1024


class LineSplitter:
    """Feed raw chunks; get back the complete lines with the raw offset where each starts.

    A line longer than `cap` bytes is cut into pieces of `cap` bytes, so a child that prints a
    100 MB line without a newline costs at most `cap` bytes of memory here.
    """

    def __init__(self, cap: int = DEFAULT_LINE_CAP) -> None:
        self.cap = cap
        self._pending = b""
        self._pending_start = 0  # raw offset of the first pending byte

    @property
    def pending(self) -> bytes:
        """The unfinished last line (a progress bar being redrawn, a prompt)."""
        return self._pending

    @property
    def pending_start(self) -> int:
        """Raw offset of the first byte of the unfinished line (= end of complete lines)."""
        return self._pending_start

    def feed(self, data: bytes) -> tuple[list[int], list[bytes]]:
        """Return (starts, lines) for the lines completed by `data`; lines exclude the "\\n"."""
        buf = self._pending + data if self._pending else data
        pos = self._pending_start
        parts = buf.split(b"\n")
        tail = parts.pop()
        cap = self.cap
        lengths = list(map(len, parts))
        if lengths and max(lengths) > cap:
            starts, lines, pos = self._cut_long(parts, pos)
        else:
            # the common case, without a Python loop per line: offsets are a running sum
            starts = list(accumulate(map(add, lengths, repeat(1)), initial=pos))
            pos = starts.pop()
            lines = parts
        if len(tail) > cap:
            cut = ((len(tail) - 1) // cap) * cap  # keep 1..cap bytes pending
            for i in range(0, cut, cap):
                starts.append(pos + i)
                lines.append(tail[i : i + cap])
            tail = tail[cut:]
            pos += cut
        self._pending = tail
        self._pending_start = pos
        return starts, lines

    def _cut_long(self, parts: list[bytes], pos: int) -> tuple[list[int], list[bytes], int]:
        cap = self.cap
        starts: list[int] = []
        lines: list[bytes] = []
        for part in parts:
            if len(part) > cap:
                for i in range(0, len(part), cap):
                    starts.append(pos + i)
                    lines.append(part[i : i + cap])
            else:
                starts.append(pos)
                lines.append(part)
            pos += len(part) + 1
        return starts, lines, pos

    def flush(self) -> tuple[list[int], list[bytes]]:
        """End of stream: the unfinished last line becomes a line."""
        if not self._pending:
            return [], []
        start, line = self._pending_start, self._pending
        self._pending_start += len(line)
        self._pending = b""
        return [start], [line]
