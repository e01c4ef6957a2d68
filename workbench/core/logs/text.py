"""Turn what a child printed into text that is safe to show.

Raw bytes are kept untouched in the run's log file; this module only makes the display copy:
decode (invalid UTF-8 survives as U+FFFD), fold `\\r` progress updates, strip ANSI and other
control sequences, and neutralise C0/C1 controls and bidi overrides so that nothing a child
prints can drive the user's terminal (OSC 52 clipboard writes, title changes, cursor moves).
Everything here works on whole chunks and never lets a pattern cross a newline, so the number
of lines is preserved.
"""

from __future__ import annotations

import operator
import re
import threading

try:  # optional: a control-byte check at memory speed; `bytes.translate` otherwise
    import hyperscan as _hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    _hyperscan = None

# ESC-introduced sequences. None of these may consume "\n": line counts must survive.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?                 # CSI ... final byte (unterminated at end: drop)
    | \x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?     # OSC ... BEL or ST (title, clipboard, links)
    | \x1b[PX^_][^\x1b\n]*(?:\x1b\\)?          # DCS / SOS / PM / APC ... ST
    | \x1b[ -/]*[0-~]?                         # two-byte and charset-designation escapes
    """,
    re.VERBOSE,
)

_ESCAPE_SEQUENCE_BYTES = re.compile(_ESCAPE_SEQUENCE.pattern.encode(), re.VERBOSE)
_RSTRIP_CR = operator.methodcaller("rstrip", b"\r")

# Anything that is not plain printable text (tab and newline are allowed through).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _control_picture(code: int) -> str:
    return chr(0x2400 + code)


# C0 controls become visible Unicode "control pictures" (NUL -> U+2400) so a reader sees that
# something was there; C1 controls and bidi overrides become U+FFFD.
_TRANSLATE: dict[int, str | None] = {c: _control_picture(c) for c in range(0x20) if c not in (9, 10)}
_TRANSLATE[0x7F] = "\u2421"
_TRANSLATE.update({c: "\ufffd" for c in range(0x80, 0xA0)})
_TRANSLATE.update(
    {c: "\ufffd" for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


def fold_carriage_returns(line: str) -> str:
    """Keep what a terminal would show after `\\r` rewrites: the last non-empty segment."""
    line = line.rstrip("\r")
    if "\r" not in line:
        return line
    for segment in reversed(line.split("\r")):
        if segment:
            return segment
    return ""


def sanitize(text: str) -> str:
    """Strip escape sequences and neutralise control characters; keeps "\\n" and "\\t"."""
    if "\x1b" in text:
        text = _ESCAPE_SEQUENCE.sub("", text)
    if _UNSAFE.search(text) is None:
        return text
    return text.translate(_TRANSLATE)


# Every C0 control but tab and newline (so also "\\r" and ESC), and DEL.
_CONTROL_BYTES = bytes([*range(0x09), *range(0x0B, 0x20), 0x7F])
_local = threading.local()  # a Hyperscan database's scratch space is not shared across threads


def has_controls(blob: bytes) -> bool:
    """Does `blob` hold a byte of `_CONTROL_BYTES`?"""
    if _hyperscan is None:
        return len(blob.translate(None, _CONTROL_BYTES)) != len(blob)
    db = getattr(_local, "controls", None)
    if db is None:
        db = _local.controls = _hyperscan.Database(mode=_hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[rb"[\x00-\x08\x0b-\x1f\x7f]"], ids=[0], elements=1,
                   flags=[_hyperscan.HS_FLAG_SINGLEMATCH])
    found: list[int] = []
    db.scan(blob, match_event_handler=lambda *_a: found.append(1))  # reported once
    return bool(found)


def display_text(raw_lines: list[bytes]) -> str:
    """Display text of complete raw lines (without their "\\n"), joined by "\\n"."""
    if raw_lines and raw_lines[0].endswith(b"\r"):
        # a pty turns "\n" into "\r\n": drop the trailing "\r"s as folding does, in C
        plain = b"\n".join(map(_RSTRIP_CR, raw_lines))
    else:
        plain = b"\n".join(raw_lines)
    if plain.isascii() and b"\r" not in plain:
        # The common case, without a pass per line in Python: plain ASCII is its own display
        # text once colour escapes (vLLM's own) are stripped.
        if b"\x1b" in plain:
            plain = _ESCAPE_SEQUENCE_BYTES.sub(b"", plain)
        if not has_controls(plain):
            return plain.decode("ascii")
    blob = b"\n".join(raw_lines)
    text = blob.decode("utf-8", "replace")
    if "\r" in text:
        text = "\n".join(fold_carriage_returns(part) for part in text.split("\n"))
    return sanitize(text)


def display_lines(raw_lines: list[bytes]) -> list[str]:
    """Display text for complete raw lines (without their trailing "\\n"), one per input."""
    if not raw_lines:
        return []
    return display_text(raw_lines).split("\n")


def display_line(raw: bytes) -> str:
    """Display text for one raw line (its trailing newline, if any, is dropped)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    return display_lines([raw])[0]
