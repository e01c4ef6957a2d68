"""Promise 3: nothing a child prints (or its HTTP server answers) reaches the user's terminal
as a control sequence — in `run --headless` output (unless `--raw`) and in the display lines
the TUI's log view shows (both come from `LogStore`, fuzzed here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import free_port
from tests.reliability.children import write_script
from workbench.core.logs.logstore import LogStore

BIDI = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x061C, 0x200E, 0x200F}


def unsafe_chars(text: str) -> list[str]:
    """Characters that could drive a terminal: ESC and other C0 (but tab and newline), DEL,
    C1 (U+0080-U+009F) and bidi overrides."""
    return [c for c in text if (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or ord(c) in BIDI]


def assert_safe_bytes(out: bytes) -> str:
    text = out.decode("utf-8")  # strict: a raw 0x80-0x9F byte cannot hide in valid UTF-8 output
    bad = unsafe_chars(text)
    assert not bad, f"{len(bad)} unsafe characters, first {bad[:5]!r}"
    return text


def headless(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "run", "--headless", *args],
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_headless_output_of_the_nasty_simulator_is_clean(tmp_path: Path, no_leaks) -> None:
    port = str(free_port())
    out = headless("--session-dir", str(tmp_path / "s"), "--", sys.executable, "-m", "workbench.sim", "nasty-output",
                   "--port", port, "--time-scale", "0.05")
    text = assert_safe_bytes(out.stdout)
    assert_safe_bytes(out.stderr)
    for visible in ("clipboard write above", "title change above", "cursor moved", "DCS above", "bidi:", "verdict:"):
        assert visible in text  # the text around the sequences is still shown


def test_raw_passes_the_bytes_through(tmp_path: Path, no_leaks) -> None:
    """The opposite check: with --raw the child's escape sequences do reach stdout."""
    child = write_script(tmp_path, "c.py", "import os; os.write(1, b'\\x1b]52;c;aGk=\\x07x\\n\\x9b2J\\n')")
    out = headless("--raw", "--session-dir", str(tmp_path / "s"), "--", sys.executable, str(child))
    assert b"\x1b]52;c;aGk=\x07x\n\x9b2J\n" in out.stdout
    cooked = headless("--session-dir", str(tmp_path / "s2"), "--", sys.executable, str(child))
    assert_safe_bytes(cooked.stdout)


# A child whose log and HTTP answers are hostile: the model id and the smoke error body carry
# OSC 52, a title change, C1 and a bidi override; the headless notes quote both.
HOSTILE_SERVER = r'''
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
EVIL = "\x1b]52;c;SGVsbG8=\x07\x1b]0;owned\x07\x9b2J\u202eevil\u2066\x1bP1$r\x1b\\"
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _send(self, code, body):
        data = body.encode()
        self.send_response(code); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._send(200, json.dumps({"data": [{"id": "model" + EVIL}]}))
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(500, "boom" + EVIL)
os.write(1, ("starting" + EVIL + "\n").encode() + b"\x9b31m raw C1\n\xc2\x9d0;x\x07 utf-8 C1\n")
HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
'''


def test_hostile_http_answers_are_neutralised_in_headless_notes(tmp_path: Path, no_leaks) -> None:
    child = write_script(tmp_path, "server.py", HOSTILE_SERVER)
    out = headless("--session-dir", str(tmp_path / "s"), "--startup-timeout", "30", "--",
                   sys.executable, str(child), "--port", str(free_port()))
    text = assert_safe_bytes(out.stdout)
    assert "smoke FAILED" in text and "boom" in text  # the quoted answer is there, neutralised
    assert "starting" in text and "raw C1" in text


HOSTILE_PIECES = [
    b"\x1b", b"[", b"]", b"52;c;", b"\x07", b"\x1b\\", b"P", b"0;", b"2J", b"\x9b", b"\x9d", b"\xc2", b"\xc2\x9b",
    b"\r", b"\n", b"\x00", b"\t", b"\x7f", "\u202e".encode(), "\u2066".encode(), "\u200f".encode(), b"\xff", b"a",
    b"text ", "é".encode(),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(HOSTILE_PIECES) | st.binary(max_size=8), max_size=30), min_size=1, max_size=12))
def test_fuzz_the_log_store_pipeline(tmp_path_factory, chunks: list[list[bytes]]) -> None:
    """Arbitrary chunking (a sequence split across reads), hostile pieces: the store never
    raises, never yields an unsafe character (tail, pread path or the partial line), and keeps
    the line count (one per newline, plus the unfinished last line)."""
    data = [b"".join(c) for c in chunks]
    store = LogStore(tmp_path_factory.mktemp("fuzz") / "output.log")
    try:
        shown: list[str] = []
        for chunk in data:
            store.append(chunk)
            assert not unsafe_chars(store.partial)
        shown += store.lines(0, len(store))
        store.finish()
        whole = b"".join(data)
        expected = whole.count(b"\n") + (0 if whole.endswith(b"\n") or not whole else 1)
        assert len(store) == expected
        everything = store.lines(0, len(store))
        assert len(everything) == expected
        for line in everything:
            assert "\n" not in line and not unsafe_chars(line)
        # the same lines read back from disk (the scrollback path) are as safe
        if expected:
            assert not unsafe_chars("".join(store.lines(0, 1)))
    finally:
        store.close()
