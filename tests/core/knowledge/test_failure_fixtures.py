"""Every failure class has a realistic startup log, and `analyze` names its root cause.

The expectations live in `tests/fixtures/logs/failures/EXPECTED.toml` (file -> root cause id,
the root cause's line, last phase, verdict, first machine-applicable action). Each log ends with
the cascade vLLM really prints after the error (engine core traceback, "Engine core
initialization failed", EngineDeadError, "Worker failed with error"), so these tests also prove
that the cascade does not win.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import workbench
from workbench.core.knowledge.analyze import analyze_path
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.knowledge.verdicts import EXIT_CODES
from workbench.core.tomlfile import load_toml

ROOT = Path(__file__).resolve().parents[3]
FAILURES = ROOT / "tests" / "fixtures" / "logs" / "failures"
EXPECTED: dict[str, dict[str, Any]] = load_toml(FAILURES / "EXPECTED.toml")[0]
GENERATIONS = ("0.7", "0.8-0.10", "0.9-vllmworker", "0.10.1", "0.11-cyan", "0.32-0.33", "debug", "ascend")
_KEYS = {"generation", "root_cause", "line", "phase", "verdict", "errors", "action", "warning", "benign", "cli"}


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


def first_applicable_action(root: dict) -> dict:
    for action in root["actions"]:
        if action.get("arg_delta") or action.get("env_delta"):
            return {k: action[k] for k in ("arg_delta", "env_delta") if k in action}
    return {}


def check(result: dict, expected: dict, name: str) -> None:
    root = result["root_cause"]
    assert (root or {}).get("id") == expected.get("root_cause"), (name, root)
    assert result["last_phase"] == expected["phase"], name
    assert result["verdict"] == expected["verdict"], name
    # the cascade is recognised as such and each traceback is one finding: no stray
    # unrecognised_error next to a known root cause
    errors = sorted({f["id"] for f in result["findings"] if f["severity"] == "error" and not f["benign"]})
    assert errors == expected.get("errors", []), name
    if "root_cause" in expected:
        assert root["line"] == expected["line"], name
        assert first_applicable_action(root) == expected.get("action", {}), name
    else:
        warning = next(f for f in result["findings"] if f["id"] == expected["warning"])
        assert warning["severity"] in ("warning", "info") and warning["benign"] == expected["benign"], name


def test_the_table_is_well_formed() -> None:
    files = {p.name for p in FAILURES.glob("*.log")}
    assert set(EXPECTED) == files
    for name, row in EXPECTED.items():
        assert set(row) <= _KEYS, name
        assert row["generation"] in GENERATIONS, name
        assert ("root_cause" in row) == ("line" in row) != ("warning" in row), name


def test_every_signature_has_a_failure_fixture(recogniser) -> None:
    # adding a signature without a realistic log (and its expectations) fails here; a cascade
    # may be covered as the consequence it is in another failure's log
    # (the logs shaped like the world's, tests/fixtures/logs/world, count too)
    world = load_toml(FAILURES.parent / "world" / "EXPECTED.toml")[0]
    named = {row.get("root_cause") or row.get("warning") for row in [*EXPECTED.values(), *world.values()]}
    named |= {row.get(key) for row in world.values() for key in ("hang_signature", "benign_warning")}
    consequences = {e for row in EXPECTED.values() for e in row.get("errors", [])}
    missing = sorted(
        s.id for s in recogniser.kb.signatures
        if s.id not in named and not (s.cascade and s.id in consequences)
    )
    assert missing == []


def test_every_format_generation_appears_at_least_twice() -> None:
    counts = Counter(row["generation"] for row in EXPECTED.values())
    assert {g: counts[g] for g in GENERATIONS if counts[g] < 2} == {}


@pytest.mark.parametrize("name", sorted(n for n, r in EXPECTED.items() if r["generation"] == "0.11-cyan"))
def test_cyan_fixtures_carry_real_escape_bytes(name: str) -> None:
    for line in (FAILURES / name).read_bytes().splitlines():
        if line.strip():
            assert line.startswith(b"\x1b[0;36m(") and b"pid=" in line.split(b"\x1b[0m")[0], (name, line)


@pytest.mark.parametrize("name", sorted(n for n, r in EXPECTED.items() if r["generation"] == "debug"))
def test_debug_fixtures_use_relative_paths(name: str) -> None:
    text = (FAILURES / name).read_text()
    assert " DEBUG " in text and "[v1/engine/" in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_analyze_names_the_root_cause(recogniser, name: str) -> None:
    result = analyze_path(str(FAILURES / name), recogniser)[0].to_dict()
    check(result, EXPECTED[name], name)


@pytest.mark.parametrize("name", sorted(n for n, r in EXPECTED.items() if r.get("cli")))
def test_the_cli_says_the_same(name: str) -> None:
    done = workbench("analyze", "--json", str(FAILURES / name))
    assert "Traceback" not in done.stderr
    assert done.returncode == EXIT_CODES[EXPECTED[name]["verdict"]]
    check(json.loads(done.stdout), EXPECTED[name], name)
