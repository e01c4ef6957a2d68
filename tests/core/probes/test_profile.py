"""Profiles: collapsed stacks → speedscope and a flame graph; a real py-spy record of a busy child."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import psutil
import pytest

from tests.helpers import wait_until
from workbench.core.probes.profile import (
    hottest,
    parse_collapsed,
    record_profile,
    to_flamegraph_svg,
    to_speedscope,
)
from workbench.core.probes.stacks import py_spy_path

COLLAPSED = """\
main (app.py:1);serve (app.py:10);step (engine.py:5) 60
main (app.py:1);serve (app.py:10);<lambda> (x&y.py:2) 30
main (app.py:1);idle (app.py:20) 10
not a sample line
"""


def test_parse_and_hottest() -> None:
    stacks = parse_collapsed(COLLAPSED)
    assert sum(stacks.values()) == 100 and len(stacks) == 3
    top = hottest(stacks, 2)
    assert top[0] == ("step (engine.py:5)", 60, 0.6) and top[1][0] == "<lambda> (x&y.py:2)"


def test_speedscope_indexes_and_weights() -> None:
    doc = to_speedscope(parse_collapsed(COLLAPSED), "p")
    names = [f["name"] for f in doc["shared"]["frames"]]
    profile = doc["profiles"][0]
    assert profile["endValue"] == 100 and sorted(profile["weights"]) == [10, 30, 60]
    for sample, weight in zip(profile["samples"], profile["weights"], strict=True):
        assert names[sample[0]] == "main (app.py:1)"
        if weight == 60:
            assert [names[i] for i in sample][-1] == "step (engine.py:5)"
    json.dumps(doc)


def test_flame_graph_is_valid_svg_with_a_box_per_frame() -> None:
    svg = to_flamegraph_svg(parse_collapsed(COLLAPSED), "title <pid 1>", width=1000)
    root = ET.fromstring(svg.split("\n", 1)[1])
    ns = "{http://www.w3.org/2000/svg}"
    titles = [g.find(f"{ns}title").text for g in root.iter(f"{ns}g")]
    assert len(titles) == 5  # main, serve, idle, step, <lambda>
    widths = {t.split(" (")[0]: float(g.find(f"{ns}rect").get("width")) for t, g in zip(titles, root.iter(f"{ns}g"), strict=True)}
    assert widths["main"] == pytest.approx(1000) and widths["step"] == pytest.approx(600)
    assert widths["serve"] == pytest.approx(900) and widths["<lambda>"] == pytest.approx(300)


BUSY = """
import time
def busy_loop_for_profile():
    x = 0
    while True:
        x += 1
busy_loop_for_profile()
"""


@pytest.mark.skipif(py_spy_path() is None, reason="py-spy is not installed")
def test_record_a_busy_child(tmp_path) -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        # in its loop: a busy child has burnt some CPU (startup alone takes less)
        wait_until(lambda: sum(psutil.Process(child.pid).cpu_times()[:2]) > 0.3, what="the child to spin")
        result = record_profile(child.pid, 2.0, tmp_path)
        if "ptrace" in result.error.lower():
            pytest.skip("no ptrace rights here")
        assert result.error == ""
        assert result.samples > 0
        assert any("busy_loop_for_profile" in line for line in result.top)
        assert (tmp_path / result.paths["svg"]).exists() and (tmp_path / result.paths["speedscope"]).exists()
        assert psutil.Process(child.pid).status() != psutil.STATUS_STOPPED
    finally:
        child.kill()
        child.wait()


def test_gone_process_is_a_message(tmp_path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert "gone" in record_profile(child.pid, 1.0, tmp_path).error
