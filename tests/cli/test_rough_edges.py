"""Small CLI edges: the top-level --layout reaches demo, unknown layouts and scenarios are
refused, recipe check refuses an `expect` that can never match, sessions is a table, compare
prints no None and no empty lists, demo takes --stall-window."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from workbench.cli.main import main
from workbench.cli.parser import build_parser

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs"


def test_top_level_layout_reaches_demo_and_a_bad_one_is_refused(monkeypatch, capsys) -> None:
    args, _ = build_parser().parse_known_args(["--layout", "grid", "demo"])
    assert args.layout == "grid"
    args, _ = build_parser().parse_known_args(["demo", "--layout", "compare"])
    assert args.layout == "compare"
    opened: list[tuple] = []
    import workbench.ui.app as ui_app

    monkeypatch.setattr(ui_app, "run_app", lambda command, layout=None, **k: opened.append((command, layout)) or 0)
    assert main(["--layout", "grid", "demo"]) == 0
    assert opened and opened[-1][1] == "grid"
    assert main(["--layout", "nosuch", "demo"]) == 2
    err = capsys.readouterr().err
    assert "no layout 'nosuch'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_demo_refuses_an_unknown_scenario_and_takes_a_stall_window(monkeypatch, capsys) -> None:
    import workbench.ui.app as ui_app

    seen: list = []
    monkeypatch.setattr(ui_app, "run_app", lambda command, layout=None, settings=None, **k: seen.append(settings) or 0)
    assert main(["demo", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'nosuch'" in err and "hang" in err and not seen
    assert main(["demo", "hang", "--stall-window", "5"]) == 0
    assert seen[-1].stall_window == 5.0
    assert main(["demo", "hang", "--stall-window", "0"]) == 2


def test_recipe_check_refuses_an_expect_that_is_no_verdict_nor_finding(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f'name = "x"\ncommand = ["{sys.executable}", "-V"]\nexpect = "helthy"\n')
    good = tmp_path / "good.toml"
    good.write_text(f'name = "y"\ncommand = ["{sys.executable}", "-V"]\nexpect = "kv_cache_too_small"\n')
    assert main(["recipe", "check", str(good)]) == 0
    assert main(["recipe", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: [expect]" in err and "'helthy'" in err and "Traceback" not in err


def test_sessions_has_a_header_and_aligned_columns(state_dir, capsys, no_leaks) -> None:
    from tests.helpers import wait_until
    from workbench.core.engine.engine import Engine, session_for
    from workbench.core.engine.settings import Settings
    from workbench.core.knowledge.signatures import load_knowledge_base

    kb = load_knowledge_base()
    for name in ("short", "a-much-longer-session-name"):
        engine = Engine(session_for(None, name=name), kb, Settings(smoke=False))
        run = engine.launch(["cat", str(LOGS / "v0.11-kv-cache.log")])
        wait_until(lambda run=run: run.verdict is not None, timeout=60, what="verdict")
        engine.shutdown()
    assert main(["sessions"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0].split() == ["SESSION", "STATE", "STARTED", "RUNS", "COMMAND"]
    starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
    for line in lines[1:]:
        for column in starts[1:]:
            assert line[column - 2:column] == "  " and line[column] != " ", (line, column)


def test_compare_prints_no_none_and_no_empty_lists(tmp_path, capsys) -> None:
    assert main(["compare", str(LOGS / "v0.11-healthy.log"), str(LOGS / "v0.11-kv-cache.log")]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "[]" not in out
    assert "no root cause" in out and "root cause kv_cache_too_small" in out
    assert main(["compare", str(LOGS / "v0.11-healthy.log"), str(LOGS / "v0.11-healthy.log")]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "[]" not in out and "only in" not in out

