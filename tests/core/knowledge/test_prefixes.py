"""Lines wrapped by real deployments read as their bare selves.

Unit checks of `split_line` for each wrapper, then a property: for every fixture that has a
root cause, prefixing every line with each wrapper style (alone, combined, and a random mix
per line) gives the same root cause, on the same line, in the same phase.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.prefixes import canonical, split_line
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.tomlfile import load_toml

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
V = "(EngineCore_DP0 pid=41) ERROR 12-04 03:01:15 [core.py:708] "

# Deployment wrappers (any line of any process), then process labels (one per log).
DEPLOYMENT = {
    "compose": "vllm-1    | ",
    "compose_v1": "vllm_1  | ",
    "kubectl": "[pod/serve-7c9d-x2kqp/vllm] ",
    "journald": "Dec 04 03:01:15 gpu-node-3 vllm[2231]: ",
    "ts": "Dec 04 03:01:15 ",
    "iso": "2025-12-04T03:01:15.123456789Z ",
    "iso_ci": "[2025-12-04T03:01:15Z] ",
    "kubectl_iso": "[pod/serve-7c9d-x2kqp/vllm] 2025-12-04T03:01:15.907176622Z ",
    "compose_iso": "vllm-1  | 2025-12-04T03:01:15.400252000Z ",
    "journald_compose": "Dec 04 03:01:15 host dockerd[88]: vllm-1  | ",
}
PROCESS = {
    "ray": "(RayWorkerWrapper pid=164587, ip=10.0.0.5) ",
    "rank": "[rank0]: ",
}


def test_each_wrapper_is_split_off() -> None:
    for name, prefix in DEPLOYMENT.items():
        parts = split_line(prefix + V + "KeyError: 'factor'")
        assert (parts.level, parts.process, parts.message) == ("ERROR", "EngineCore_DP0 pid=41", "KeyError: 'factor'"), name
        assert parts.time is not None, name
        assert canonical(prefix + V + "x") == V + "x", name
    ray = split_line(PROCESS["ray"] + "ERROR 04-16 01:01:44 [worker_base.py:620] boom")
    assert ray.process == "RayWorkerWrapper pid=164587, ip=10.0.0.5" and ray.message == "boom"
    rank = split_line("[rank2]:[E1001 16:06:04.537451 ProcessGroupNCCL.cpp:607] [Rank 2] Watchdog caught")
    assert (rank.process, rank.level, rank.time) == ("rank2", "ERROR", "10-01 16:06:04")
    assert rank.message == "[Rank 2] Watchdog caught"
    old_glog = split_line("[rank0]:[E ProcessGroupNCCL.cpp:563] [Rank 0] Watchdog")
    assert old_glog.level == "ERROR" and old_glog.message == "[Rank 0] Watchdog"
    asc = split_line("[ERROR] 2025-10-15-16:32:16 (PID:3132, Device:0, RankID:-1) ERR00100 PTA call acl api failed")
    assert (asc.level, asc.time, asc.message) == ("ERROR", "10-15 16:32:16", "ERR00100 PTA call acl api failed")
    nested = split_line("(vLLMHttpServer pid=1) (Worker_TP1 pid=2) ERROR 01-26 03:28:29 [x.py:1] boom")
    assert nested.process == "Worker_TP1 pid=2" and nested.fields["outer_proc"] == "vLLMHttpServer pid=1"
    caret = split_line("^[[1;36m(VllmWorkerProcess pid=3)^[[0;0m WARNING 08-28 14:16:50 shm_broadcast.py:404] x")
    assert (caret.process, caret.level, caret.message) == ("VllmWorkerProcess pid=3", "WARNING", "x")


def test_ordinary_lines_are_not_taken_for_wrappers() -> None:
    for line in (
        "Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:01<00:01,  1.2it/s]",
        "KeyError: 'factor'",
        "During handling of the above exception, another exception occurred:",
        "  Value error, Sleep mode is not supported [type=value_error, input_value=0]",
        "INFO:     127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK",
    ):
        assert canonical(line) == line


def _fixtures_with_a_root() -> list[tuple[Path, dict]]:
    rows = []
    for folder in ("world", "failures"):
        table = load_toml(LOGS / folder / "EXPECTED.toml")[0]
        rows += [(LOGS / folder / n, r) for n, r in sorted(table.items()) if "root_cause" in r and "env" not in r]
    return rows


FIXTURES = _fixtures_with_a_root()


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


@pytest.fixture(scope="module")
def bare(recogniser) -> dict[Path, tuple[str, dict]]:
    """Each fixture's text and what analyze says of it unwrapped."""
    out = {}
    for path, _row in FIXTURES:
        text = path.read_bytes().decode()
        out[path] = (text, analyze_text(text, recogniser).to_dict())
    return out


def wrap(text: str, prefixes: list[str]) -> str:
    lines = text.split("\n")
    tail = [""] if lines and lines[-1] == "" else []
    body = lines[:-1] if tail else lines
    return "\n".join(prefixes[i % len(prefixes)] + line for i, line in enumerate(body)) + ("\n" if tail else "")


def same_reading(recogniser, text: str, expected: dict, prefixes: list[str], what: str) -> None:
    result = analyze_text(wrap(text, prefixes), recogniser).to_dict()
    root, want = result["root_cause"], expected["root_cause"]
    assert root is not None, what
    assert (root["id"], root["seq"]) == (want["id"], want["seq"]), (what, root["line"], want["line"])
    assert root["line"].endswith(want["line"]), what
    assert result["last_phase"] == expected["last_phase"], what


STYLES = {**DEPLOYMENT, **PROCESS, "kubectl_ray": DEPLOYMENT["kubectl"] + PROCESS["ray"],
          "compose_rank": DEPLOYMENT["compose"] + PROCESS["rank"]}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_fixture_reads_the_same_under_a_wrapper(recogniser, bare, style: str) -> None:
    assert len(FIXTURES) >= 60
    for path, _row in FIXTURES:
        text, expected = bare[path]
        same_reading(recogniser, text, expected, [STYLES[style]], f"{path.name} under {style}")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_random_mix_of_wrappers_reads_the_same(recogniser, bare, data) -> None:
    path, _row = data.draw(st.sampled_from(FIXTURES))
    text, expected = bare[path]
    n = text.count("\n") + 1
    mix = data.draw(st.lists(st.sampled_from(["", *DEPLOYMENT.values()]), min_size=n, max_size=n))
    process = data.draw(st.sampled_from(["", *PROCESS.values()]))
    same_reading(recogniser, text, expected, [m + process for m in mix], f"{path.name} mixed")
