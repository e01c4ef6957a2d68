"""Multi-pattern matching over batches of display lines, or over clean raw bytes.

Hyperscan scans a whole batch in one pass (1M vLLM lines in a fraction of a second); without it
each pattern is searched over the joined batch with Python's `re`, which still avoids a Python
loop per line. Every hit is confirmed with Python's `re` on its own line, which also yields the
named groups that fill machine-applicable actions.

`scan_raw` is the offline fast path: a block of plain printable ASCII is its own display text,
so Hyperscan scans the raw bytes and only the lines it hits are ever decoded (`RawLines`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from bisect import bisect_left, insort
from collections.abc import Sequence
from pathlib import Path

from workbench.core.logs.text import has_controls

try:  # optional: wheels exist for x86_64 and aarch64 Linux
    import hyperscan as _hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    _hyperscan = None



class Matcher:
    def __init__(self, patterns: Sequence[str], backend: str | None = None) -> None:
        self.patterns = list(patterns)
        # compiled on first use: a hit is rare, and 100 patterns cost ~20 ms at start-up
        self._compiled: list[re.Pattern[str] | None] = [None] * len(self.patterns)
        self.backend = backend or ("hyperscan" if _hyperscan is not None else "re")
        self._db = None
        self._local = threading.local()  # one Hyperscan scratch per thread: runs read in parallel
        if self.backend == "hyperscan" and self.patterns:
            if _hyperscan is None:
                raise RuntimeError("hyperscan is not installed")
            self._db = _load_database(self.patterns)

    def _hs_scan(self, blob: bytes, ends: list[tuple[int, int]]) -> None:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = _hyperscan.Scratch(self._db)
        self._db.scan(blob, match_event_handler=lambda pid, _f, to, _fl, _c: ends.append((to, pid)), scratch=scratch)

    def _rx(self, index: int) -> re.Pattern[str]:
        rx = self._compiled[index]
        if rx is None:
            rx = self._compiled[index] = re.compile(self.patterns[index], re.MULTILINE)
        return rx

    def scan(self, lines: Sequence[str], text: str | None = None) -> list[tuple[int, int]]:
        """(line index, pattern index) for every pattern that matches a line, in line order.
        `text`, if given, is `"\\n".join(lines)` already made by the caller."""
        if not lines or not self.patterns:
            return []
        if text is None:
            text = "\n".join(lines)
        if self._db is not None:
            candidates = self._scan_hyperscan(text)
        else:
            candidates = self._scan_re(text)
        rx = self._rx
        return [(li, pi) for li, pi in candidates if rx(pi).search(lines[li])]

    def scan_raw(self, blob: bytes) -> tuple[list[tuple[int, int]], RawLines] | None:
        """Hits in a block of whole raw lines (ending with "\\n", none longer than the
        splitter's cap), as `scan` would give for its display lines; None when the block is
        not plain printable ASCII (its display text differs) or there is no Hyperscan."""
        if self._db is None or not blob.isascii():
            return None
        if b"\r" in blob:  # a pty's "\r\n": the "\r" is folded away; the newlines stay put
            blob = blob.replace(b"\r\n", b"\n")
        if has_controls(blob):
            return None
        ends: list[tuple[int, int]] = []
        self._hs_scan(blob, ends)
        anchors: dict[int, int] = {}  # line index -> offset of its first byte
        counted: list[int] = [0, 0]  # newlines before `pos`, pos: where the walk stopped
        candidates = _locate(blob, b"\n", ends, anchors, counted)
        lines = RawLines(blob, counted[0] + blob.count(b"\n", counted[1]), anchors)
        rx = self._rx
        return [(li, pi) for li, pi in candidates if rx(pi).search(lines[li])], lines

    def captures(self, line: str, pattern_index: int) -> dict[str, str]:
        found = self._rx(pattern_index).search(line)
        if not found:
            return {}
        return {k: v for k, v in found.groupdict().items() if v is not None}

    def _scan_hyperscan(self, text: str) -> list[tuple[int, int]]:
        blob = text.encode("utf-8", "surrogateescape")
        ends: list[tuple[int, int]] = []
        self._hs_scan(blob, ends)
        return _locate(blob, b"\n", ends)

    def _scan_re(self, text: str) -> list[tuple[int, int]]:
        ends: list[tuple[int, int]] = []
        for pid in range(len(self.patterns)):
            ends.extend((m.start() + 1, pid) for m in self._rx(pid).finditer(text))
        return _locate(text, "\n", ends)


class RawLines(Sequence[str]):
    """The display lines of a clean raw block, decoded only when asked for.

    Known line starts (the hits) are anchors; any other line is reached by walking newlines
    from the nearest anchor, which is what the look-back for a timestamp near a hit needs.
    """

    def __init__(self, blob: bytes, count: int, anchors: dict[int, int]) -> None:
        self._blob = blob
        self._count = count
        self._starts = {0: 0, **anchors}
        self._known = sorted(self._starts)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        start = self._start(index)
        return self._blob[start : self._blob.find(b"\n", start)].decode("ascii")

    def _start(self, index: int) -> int:
        start = self._starts.get(index)
        if start is not None:
            return start
        blob = self._blob
        k = bisect_left(self._known, index)
        below = self._known[k - 1]  # line 0 is always known
        if k < len(self._known) and self._known[k] - index < index - below:
            line, start = self._known[k], self._starts[self._known[k]]
            while line > index:
                start = blob.rfind(b"\n", 0, start - 1) + 1
                line -= 1
        else:
            line, start = below, self._starts[below]
            while line < index:
                start = blob.find(b"\n", start) + 1
                line += 1
        self._starts[index] = start
        insort(self._known, index)
        return start


def _compile(patterns: Sequence[str | bytes], flag: int):
    db = _hyperscan.Database(mode=_hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=[p.encode() if isinstance(p, str) else p for p in patterns],
        ids=list(range(len(patterns))),
        elements=len(patterns),
        flags=[flag] * len(patterns),
    )
    return db


def _cache_dir() -> Path:
    override = os.environ.get("WORKBENCH_STATE_DIR")
    if override:
        return Path(override) / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vllm-workbench"))


def _load_database(patterns: Sequence[str]):
    """The compiled database, from a private cache when the same patterns were compiled
    before: compiling the knowledge base takes ~0.1 s, loading it well under 1 ms."""
    key = hashlib.sha256("\0".join([_hyperscan.__version__, *patterns]).encode()).hexdigest()[:32]
    path = _cache_dir() / f"hs-{key}.db"
    try:
        db = _hyperscan.loadb(path.read_bytes(), _hyperscan.HS_MODE_BLOCK)
        db.scratch = _hyperscan.Scratch(db)
        return db
    except Exception:  # noqa: BLE001 - missing, stale or unreadable: compile instead
        pass
    db = _compile(patterns, _hyperscan.HS_FLAG_MULTILINE)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(_hyperscan.dumpb(db))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: compile every time
    return db


def _locate(blob, newline, ends: list[tuple[int, int]], anchors: dict[int, int] | None = None,
            counted: list[int] | None = None) -> list[tuple[int, int]]:
    """Map match end offsets to line indexes; one entry per (line, pattern). With `anchors`,
    also record where each hit line starts; with `counted`, leave [newlines counted, offset
    counted to] in it, so the caller need not count that stretch again."""
    if not ends:
        return []
    ends.sort()
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    line = 0
    pos = 0
    for end, pid in ends:
        # a match ends at `end`; its last byte is at end - 1
        last = max(end - 1, 0)
        if last > pos:
            line += blob.count(newline, pos, last)
            pos = last
        key = (line, pid)
        if key not in seen:
            seen.add(key)
            out.append(key)
            if anchors is not None and line not in anchors:
                anchors[line] = blob.rfind(newline, 0, last) + 1
    if counted is not None:
        counted[:] = [line, pos]
    out.sort()
    return out
