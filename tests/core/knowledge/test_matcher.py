import pytest

from workbench.core.knowledge import matcher as M

PATTERNS = [r"estimated maximum model length is (?P<max_len>\d+)", "CUDA out of memory", r"^Traceback"]
LINES = [
    "INFO hello",
    "ValueError: ... the estimated maximum model length is 8192. Try ...",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate",
    "Traceback (most recent call last):",
    "  not a Traceback at start",
    "CUDA out of memory CUDA out of memory",
]
EXPECTED = [(1, 0), (2, 1), (3, 2), (5, 1)]


@pytest.mark.parametrize("backend", ["hyperscan", "re"])
def test_backends_agree(backend: str) -> None:
    if backend == "hyperscan" and M._hyperscan is None:
        pytest.skip("hyperscan has no wheel for this platform")
    m = M.Matcher(PATTERNS, backend=backend)
    assert m.scan(LINES) == EXPECTED
    assert m.captures(LINES[1], 0) == {"max_len": "8192"}


def test_hits_never_span_two_lines() -> None:
    m = M.Matcher([r"alpha\s+beta"], backend="hyperscan" if M._hyperscan else "re")
    assert m.scan(["alpha", "beta", "alpha  beta"]) == [(2, 0)]


def test_raw_scan_agrees_with_display_scan() -> None:
    if M._hyperscan is None:
        pytest.skip("hyperscan has no wheel for this platform")
    m = M.Matcher(PATTERNS)
    blob = ("\n".join(LINES) + "\n").encode()
    hits, lines = m.scan_raw(blob)
    assert hits == EXPECTED
    assert list(lines) == LINES
    assert lines[3] == LINES[3] and lines[-1] == LINES[-1]
    assert m.scan_raw(b"\x1b[31mCUDA out of memory\x1b[0m\n") is None  # display text differs
    assert m.scan_raw("caf\u00e9\n".encode()) is None


def test_runs_scanning_at_once_each_get_their_own_scratch() -> None:
    """Two runs (an eager rerun beside its first run) read in parallel through one shared
    matcher: Hyperscan refuses a scratch that another thread is using."""
    import threading

    if M._hyperscan is None:
        pytest.skip("hyperscan is not installed here")
    matcher = M.Matcher([r"ERROR", r"Traceback"], backend="hyperscan")
    lines = ["INFO x"] * 20000 + ["ERROR y"]
    text = "\n".join(lines)
    errors: list[BaseException] = []

    def scan_often() -> None:
        try:
            for _ in range(20):
                assert matcher.scan(lines, text)[-1] == (20000, 0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scan_often) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
