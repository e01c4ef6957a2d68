"""Ascend plog: CANN writes one log file per process (`plog-PID_TIMESTAMP.log`) outside stdout.

HCCL and ACL errors are often explained only there, so a run on Ascend gets a second log source:
the plog files of the PIDs in its tree, tailed into `runs/<id>/plog.log` and recognised with
the same knowledge base.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

PLOG_NAME = re.compile(r"^plog-(\d+)_\d+\.log$")
POLL = 0.5  # seconds between looks at the plog directories
READ_LIMIT = 4 * 1024 * 1024  # bytes read per file per look


def plog_dirs(env: dict[str, str]) -> list[Path]:
    """Where CANN writes plog for a process with this environment."""
    roots = []
    if env.get("ASCEND_PROCESS_LOG_PATH"):
        roots.append(Path(env["ASCEND_PROCESS_LOG_PATH"]))
    home = env.get("HOME") or str(Path.home())
    roots.append(Path(home) / "ascend" / "log")
    dirs = []
    for root in roots:
        dirs += [root / "debug" / "plog", root / "run" / "plog", root]
    return dirs


class PlogTailer:
    """Follows the plog files whose PID is in `pids()`; hands complete lines to `sink`."""

    def __init__(self, dirs: list[Path], pids: Callable[[], set[int]],
                 sink: Callable[[bytes], None]) -> None:
        self.dirs = dirs
        self.pids = pids
        self.sink = sink
        self.offsets: dict[Path, int] = {}
        self.pending: dict[Path, bytes] = {}
        self.files_seen: set[Path] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="wb-plog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after one last look (lines written just before the process died count too)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            self.poll()
        self.poll()

    def candidates(self) -> list[Path]:
        wanted = self.pids()
        found = []
        for directory in self.dirs:
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                match = PLOG_NAME.match(name)
                if match and int(match.group(1)) in wanted:
                    found.append(directory / name)
        return sorted(found)

    def poll(self) -> None:
        for path in self.candidates():
            self.files_seen.add(path)
            offset = self.offsets.get(path, 0)
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(READ_LIMIT)
            except OSError:
                continue
            if not data:
                continue
            self.offsets[path] = offset + len(data)
            data = self.pending.pop(path, b"") + data
            complete, _, rest = data.rpartition(b"\n")
            if rest:
                self.pending[path] = rest
            if complete:
                pid = PLOG_NAME.match(path.name).group(1)  # type: ignore[union-attr]
                tag = f"[plog {pid}] ".encode()
                self.sink(b"".join(tag + line + b"\n" for line in complete.split(b"\n")))
