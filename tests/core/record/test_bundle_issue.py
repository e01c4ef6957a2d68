"""The bundle's ISSUE.md: an escape-free excerpt of whole lines that ends with the root-cause
line after its traceback, and "What was tried" shows what each run changed."""

from __future__ import annotations

import re
import sys

from tests.helpers import free_port, wait_until
from workbench.core.engine.engine import Engine, session_for
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.record.bundle import issue_markdown, run_change


def test_issue_excerpt_and_what_was_tried(state_dir, no_leaks) -> None:
    engine = Engine(session_for(None, name="oom"), load_knowledge_base(), Settings(smoke=False))
    try:
        argv = [sys.executable, "-m", "workbench.sim", "oom-graph-capture", "--port", str(free_port()),
                "--time-scale", "0.05"]
        first = engine.launch(argv)
        wait_until(lambda: first.verdict is not None, timeout=60, what="first verdict")
        second = engine.relaunch(first.id, arg_delta={"--max-model-len": "4096"}, cause="key a: cuda_oom")
        wait_until(lambda: second.verdict is not None, timeout=60, what="second verdict")
        third = engine.relaunch(first.id, arg_delta={"--enforce-eager": True}, cause="key e")
        wait_until(lambda: third.verdict is not None, timeout=60, what="third verdict")
        root = first.root_cause()
        raw = first.store.path.read_bytes()
        assert b"\x1b[" in raw and b"\r" in raw  # the raw log has colours and progress frames
    finally:
        engine.shutdown()
    text = issue_markdown(engine.session.dir)
    excerpt = text.split("```text\n")[2].split("\n```")[0]
    assert "\x1b" not in excerpt and "\r" not in excerpt
    lines = excerpt.splitlines()
    print(excerpt)
    assert lines[-1] == root.line  # it ends with the root-cause line...
    assert "Traceback (most recent call last):" in lines[0]  # ...after its traceback
    assert not any("%|" in line for line in lines[-3:])  # not a progress-bar frame at the end
    tried = text.split("What was tried:")[1]
    rows = [row for row in tried.splitlines() if re.match(r"\| r\d+ ", row)]
    assert " | - | " in rows[0]
    assert "--max-model-len 4096" in rows[1] and "--enforce-eager" in rows[2]


def test_run_change_names_flags_added_changed_dropped_and_env() -> None:
    base = {"argv": ["vllm", "serve", "m", "--port", "8000", "--enforce-eager"], "env_delta": {"A": "1"}}
    run = {"argv": ["vllm", "serve", "m", "--port=8001", "--max-model-len", "4096"], "env_delta": {"B": "2"}}
    assert run_change(base, base) == "-"
    assert run_change(base, run) == "--port 8001 --max-model-len 4096 no --enforce-eager B=2 unset A"
    assert run_change(base, dict(base)) == "same command"
