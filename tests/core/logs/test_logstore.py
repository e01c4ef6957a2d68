import hashlib
import os

from workbench.core.logs.logstore import LogStore


def test_raw_bytes_are_kept_exactly(tmp_path) -> None:
    store = LogStore(tmp_path / "out.log")
    data = os.urandom(200_000) + b"\r\n\x1b[31mred\x1b[0m\x00tail without newline"
    for i in range(0, len(data), 4096):
        store.append(data[i : i + 4096])
    store.finish()
    assert hashlib.sha256((tmp_path / "out.log").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_lines_beyond_the_memory_tail_are_read_back_from_disk(tmp_path) -> None:
    store = LogStore(tmp_path / "out.log", tail_lines=10)
    store.append(b"".join(b"\x1b[1mline %d\x1b[0m\r\n" % i for i in range(1000)))
    assert len(store) == 1000
    assert store.line(0) == "line 0"
    assert store.lines(500, 503) == ["line 500", "line 501", "line 502"]
    assert store.line(999) == "line 999"


def test_partial_line_shows_the_latest_progress(tmp_path) -> None:
    store = LogStore(tmp_path / "out.log")
    store.append(b"done\nLoading  10%\rLoading  60%")
    assert store.partial == "Loading  60%"
    first, lines = store.append(b"\rLoading 100%\n")
    assert (first, lines) == (1, ["Loading 100%"])


def test_files_are_private(tmp_path) -> None:
    store = LogStore(tmp_path / "out.log")
    store.append(b"x\n")
    assert (os.stat(tmp_path / "out.log").st_mode & 0o777) == 0o600
