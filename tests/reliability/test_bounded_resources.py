"""Promise 4: bounded resources. A 100 MB line with no newline, a big flood, and many tiny runs
in a row: the workbench's memory stays bounded and file descriptors and threads do not leak."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from workbench.core.engine.engine import Engine
from workbench.core.engine.settings import Settings
from workbench.core.record.session import Session

MB = 1024 * 1024
# writes SIZE bytes in 1 MiB writes: "line" = one line without a newline, "flood" = 100-byte lines
PRODUCER = r"""
import os, sys
size, kind = int(sys.argv[1]), sys.argv[2]
block = b"x" * (1 << 20) if kind == "line" else (b"y" * 99 + b"\n") * ((1 << 20) // 100)
done = 0
while done < size:
    done += os.write(1, block[: size - done])
"""


def rss() -> int:
    return psutil.Process().memory_info().rss


def fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else psutil.Process().num_fds()


def _produce(tmp_path: Path, size: int, kind: str, tail_lines: int = 2_000) -> tuple[int, float, int]:
    engine = Engine(Session(tmp_path / "s"), settings=Settings(tail_lines=tail_lines, smoke=False))
    before = rss()
    peak = before
    try:
        started = time.monotonic()
        run = engine.launch([sys.executable, "-c", PRODUCER, str(size), kind])
        while not run.reader_done.wait(0.1):
            peak = max(peak, rss())
            assert time.monotonic() - started < 240, "too slow"
        took = time.monotonic() - started
        assert run.store.bytes_written == size
        assert run.store.path.stat().st_size == size
        return peak - before, took, len(run.store)
    finally:
        engine.shutdown()


def test_a_100_mb_line_without_newline(tmp_path: Path, no_leaks) -> None:
    growth, took, lines = _produce(tmp_path, 100 * MB, "line")
    print(f"100 MB line: {took:.1f} s, RSS +{growth / MB:.0f} MB, {lines} display pieces")
    assert growth < 200 * MB


@pytest.mark.parametrize("size_mb", [256, 1024])
def test_a_flood(tmp_path: Path, size_mb: int, no_leaks) -> None:
    growth, took, lines = _produce(tmp_path, size_mb * MB, "flood")
    print(f"{size_mb} MB flood: {took:.1f} s ({size_mb / took:.0f} MB/s), RSS +{growth / MB:.0f} MB, {lines} lines")
    assert lines == size_mb * MB // 100 + (1 if size_mb * MB % 100 else 0)
    assert growth < 200 * MB


def test_many_tiny_runs_in_a_row_leak_nothing(tmp_path: Path, no_leaks) -> None:
    """As many runs as fit in ~20 s through one engine (each: launch, output, exit, reader done)."""
    engine = Engine(Session(tmp_path / "s"), settings=Settings(smoke=False))
    try:
        def one() -> None:
            run = engine.launch(["/bin/echo", "tiny"])
            assert run.reader_done.wait(20) and run.exited.wait(20)
            engine.watchers[run.id].cancel()

        for _ in range(5):  # warm up: imports, caches, the env report
            one()
        time.sleep(0.5)
        fd0, threads0, rss0 = fds(), threading.active_count(), rss()
        count, started = 0, time.monotonic()
        while time.monotonic() - started < 20:
            one()
            count += 1
        time.sleep(1.0)  # watcher threads finish their last look
        fd1, threads1, rss1 = fds(), threading.active_count(), rss()
        print(f"{count} tiny runs in {time.monotonic() - started:.0f} s: fds {fd0}->{fd1}, threads {threads0}->{threads1}, "
              f"RSS +{(rss1 - rss0) / MB:.1f} MB")
        assert count >= 50
        assert fd1 - fd0 <= 3 * count // 100 + 5, f"fds {fd0} -> {fd1} after {count} runs"
        assert threads1 - threads0 <= 5, f"threads {threads0} -> {threads1}"
        assert rss1 - rss0 < 100 * MB
    finally:
        engine.shutdown()
