"""Where a search match sits among all of them ("match 3/17"), counted on the store in chunks
from a worker thread: the whole log, not the screen."""

from __future__ import annotations

import re

CHUNK = 50_000  # lines read per pass


def match_position(store, pattern: re.Pattern[str], seq: int) -> tuple[int, int]:
    """(1-based number of the match at `seq`, total matching lines)."""
    total = len(store)
    before = count = 0
    start = 0
    while start < total:
        lines = store.lines(start, min(total, start + CHUNK))
        for i, line in enumerate(lines):
            if pattern.search(line):
                count += 1
                if start + i <= seq:
                    before += 1
        start += len(lines) or CHUNK
    return before, count
