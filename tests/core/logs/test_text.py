from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.logs.text import display_line, display_lines, fold_carriage_returns, sanitize

HOSTILE = [
    b"\x1b]52;c;SGVsbG8=\x07",  # OSC 52 clipboard write
    b"\x1b]0;owned\x07", b"\x1b]2;title\x1b\\",  # title changes
    b"\x1b[2J", b"\x1b[H", b"\x1b[10A", b"\x1b[?1049h",  # cursor and screen
    b"\x1bP1$r0m\x1b\\",  # DCS
    b"\x9b31m", b"\xc2\x9b31m", b"\xc2\x9d0;x\x07",  # 8-bit C1 (raw and UTF-8 encoded)
    "\u202eevil\u202c".encode(), b"\x00", b"\x07", b"\x7f",
]


def test_escape_sequences_are_removed_and_text_kept() -> None:
    line = display_line(b"\x1b[0;36m(APIServer pid=7)\x1b[0m INFO ready")
    assert line == "(APIServer pid=7) INFO ready"


def test_hostile_sequences_never_reach_the_display() -> None:
    for seq in HOSTILE:
        shown = display_line(b"a" + seq + b"b")
        assert "\x1b" not in shown
        assert not any(0x80 <= ord(c) <= 0x9F for c in shown)
        assert "\u202e" not in shown
        assert shown.startswith("a") and shown.endswith("b")


def test_carriage_return_progress_is_folded() -> None:
    assert fold_carriage_returns(" 10%|#\r 50%|##\r100%|###\r") == "100%|###"
    assert display_lines([b"Loading: 0%\r", b"x\r\r"]) == ["Loading: 0%", "x"]


def test_invalid_utf8_and_nul_survive_as_visible_characters() -> None:
    assert display_line(b"a\xff\x00b") == "a\ufffd\u2400b"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=20))
def test_fuzz_pipeline_never_raises_never_emits_controls_keeps_count(raw_lines: list[bytes]) -> None:
    raw_lines = [r.replace(b"\n", b"") for r in raw_lines]
    shown = display_lines(raw_lines)
    assert len(shown) == len(raw_lines)
    for line in shown:
        assert "\x1b" not in line and "\n" not in line
        assert not any(0x80 <= ord(c) <= 0x9F or (ord(c) < 0x20 and c != "\t") for c in line)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_sanitize_text(text: str) -> None:
    out = sanitize(text.replace("\n", ""))
    assert "\x1b" not in out
