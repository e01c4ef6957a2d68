from workbench.core.logs.linesplit import LineSplitter


def test_offsets_are_absolute_across_chunks() -> None:
    s = LineSplitter()
    assert s.feed(b"ab\ncd") == ([0], [b"ab"])
    assert s.feed(b"e\nf\n") == ([3, 7], [b"cde", b"f"])
    assert s.pending == b""


def test_long_line_is_cut_and_pending_stays_bounded() -> None:
    s = LineSplitter(cap=8)
    starts, lines = s.feed(b"x" * 30)
    assert all(len(line) == 8 for line in lines) and len(lines) == 3
    assert len(s.pending) <= 8
    starts2, lines2 = s.feed(b"y\n")
    assert b"".join(lines + lines2) == b"x" * 30 + b"y"
    assert starts + starts2 == [0, 8, 16, 24]


def test_a_100mb_line_never_buffers_more_than_the_cap() -> None:
    s = LineSplitter(cap=64 * 1024)
    block = b"z" * (1024 * 1024)
    total = 0
    for _ in range(100):
        _starts, lines = s.feed(block)
        total += sum(len(x) for x in lines)
        assert len(s.pending) <= 64 * 1024
    _starts, lines = s.flush()
    total += sum(len(x) for x in lines)
    assert total == 100 * len(block)


def test_flush_returns_the_unterminated_last_line() -> None:
    s = LineSplitter()
    s.feed(b"a\nno newline")
    assert s.flush() == ([2], [b"no newline"])
    assert s.flush() == ([], [])
