"""Logs in the shapes of the world's (public issues, real deployments), not of our own fixtures.

Each class of issue 16 has at least two logs in `tests/fixtures/logs/world/`, with the root
cause, its exact line, the phase and the verdict in EXPECTED.toml.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from workbench.core.knowledge.analyze import analyze_path
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.tomlfile import load_toml

WORLD = Path(__file__).resolve().parents[2] / "fixtures" / "logs" / "world"
EXPECTED: dict[str, dict[str, Any]] = load_toml(WORLD / "EXPECTED.toml")[0]
_KEYS = {"class", "root_cause", "line", "phase", "verdict", "hang_signature", "hang_phase", "hang_seconds", "env", "title", "learnt_from", "benign_warning"}


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


def test_the_table_is_well_formed() -> None:
    assert set(EXPECTED) == {p.name for p in WORLD.glob("*.log")}
    for name, row in EXPECTED.items():
        assert set(row) <= _KEYS, name
        assert ("root_cause" in row) == ("line" in row), name
        assert row["learnt_from"], name  # every shape says where it was learnt
    counts = Counter(row["class"] for row in EXPECTED.values())
    assert {c: counts[c] for c in range(1, 8) if counts[c] < 2} == {}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_analyze_reads_the_world_log(recogniser, name: str) -> None:
    row = EXPECTED[name]
    result = analyze_path(str(WORLD / name), recogniser, env=row.get("env"))[0].to_dict()
    root = result["root_cause"]
    assert (root or {}).get("id") == row.get("root_cause"), (name, root)
    if root is not None:
        assert root["line"] == row["line"], name
    if "title" in row:
        assert root["title"] == row["title"], name
    assert (result["last_phase"], result["verdict"]) == (row["phase"], row["verdict"]), name
    if "hang_phase" in row:
        assert (result["hang"]["signature"], result["hang"]["phase"]) == (row["hang_signature"], row["hang_phase"])
        assert result["hang"]["seconds"] == row["hang_seconds"]
    if "benign_warning" in row:
        assert any(f["id"] == row["benign_warning"] and f["benign"] for f in result["findings"]), name
    # a source line of a traceback is never the root cause's line
    assert root is None or not root["line"].split("] ")[-1].lstrip().startswith("raise "), name
