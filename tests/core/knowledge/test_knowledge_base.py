"""The shipped knowledge base: every signature hits a fixture line, healthy logs raise no error."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.knowledge.analyze import analyze_path
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import load_knowledge_base

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


def test_every_signature_has_a_fixture_line(recogniser) -> None:
    lines = (LOGS / "every-signature.log").read_text().splitlines()
    hit = {recogniser.targets[p][1].id for _i, p in recogniser.matcher.scan(lines) if recogniser.targets[p][0] == "signature"}
    missing = sorted(s.id for s in recogniser.kb.signatures if s.id not in hit)
    assert missing == []


@pytest.mark.parametrize("name", sorted(p.name for p in LOGS.glob("*healthy*.log")))
def test_healthy_logs_raise_no_error_finding(recogniser, name: str) -> None:
    result = analyze_path(str(LOGS / name), recogniser)[0].to_dict()
    errors = [f for f in result["findings"] if f["severity"] == "error" and not f["benign"]]
    assert errors == [] and result["verdict"] == "healthy"


def test_no_pattern_matches_an_ordinary_startup_line(recogniser) -> None:
    for name in sorted(LOGS.glob("*healthy*.log")):
        lines = name.read_text().splitlines()
        for index, pattern in recogniser.matcher.scan(lines):
            kind, target = recogniser.targets[pattern]
            if kind == "signature":
                assert target.severity != "error", (name.name, lines[index])
