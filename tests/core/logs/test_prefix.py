"""The display-side split of vLLM's record prefix: role and rank, level, time, message."""

from __future__ import annotations

import pytest

from workbench.core.logs.prefix import GUTTER_WIDTH, gutter, split_prefix


@pytest.mark.parametrize(("line", "shown", "message"), [
    ("(EngineCore_DP0 pid=7819) INFO 12-04 02:58:04 [core.py:77] Initializing", "EC0 I 02:58:04 ", "Initializing"),
    ("(APIServer pid=1) WARNING 12-04 02:58:05 [api_server.py:1] slow", "API W 02:58:05 ", "slow"),
    ("(VllmWorker TP1 pid=5) ERROR 12-04 02:58:06 [worker.py:3] boom", "W1  E 02:58:06 ", "boom"),
    ("(Worker_DP1_TP3 pid=9) DEBUG 12-04 02:58:07.123 [v1/a.py:1] d", "W3  D 02:58:07 ", "d"),
    ("(VllmWorker rank=2 pid=5) bare print", "W2             ", "bare print"),
    ("INFO 12-04 02:58:08 [a.py:1] single process", "    I 02:58:08 ", "single process"),
])
def test_prefix_becomes_a_fixed_width_gutter_and_the_message(line: str, shown: str, message: str) -> None:
    prefix = split_prefix(line)
    assert gutter(prefix) == shown and len(shown) == GUTTER_WIDTH
    assert line[prefix.message_start:] == message


def test_a_line_without_a_prefix_is_left_whole() -> None:
    for line in ("Traceback (most recent call last):", "INFO:     127.0.0.1:5 - \"GET /health\" 200", ""):
        assert split_prefix(line).message_start == 0
