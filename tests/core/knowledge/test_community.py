"""The issue search for each failure fixture: its exception type, no path or number, good URLs,
printed by analyze and written into the bundle's ISSUE.md."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.core.record.test_sessions_and_bundles import failed_session  # noqa: F401 - a fixture
from tests.helpers import REPO, workbench
from workbench.core.knowledge.analyze import analyze_path
from workbench.core.knowledge.community import (
    CONTEXT,
    community_search,
    log_window,
    search_for_log,
    subject_seq,
)
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.records import BENIGN_EXCEPTIONS, EXCEPTION_AT_START, parse_record
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.record.bundle import bundle_session

FAILURES = sorted((REPO / "tests" / "fixtures" / "logs" / "failures").glob("*.log"))
RECOGNISER = Recogniser(load_knowledge_base([]))


def exception_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        found = EXCEPTION_AT_START.match(re.sub(r"^(\[[^\]]*\]:?\s*)+", "", parse_record(line)[3].strip()))
        if found and found.group(1) not in BENIGN_EXCEPTIONS:
            names.add(found.group(1))
    return names


def check_url(url: str, repo: str, phrase: str) -> None:
    parsed = urlparse(url)
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("https", "github.com", f"/{repo}/issues")
    assert parse_qs(parsed.query) == {"q": [f"is:issue {phrase}"]}


@pytest.mark.parametrize("log", FAILURES, ids=[p.name for p in FAILURES])
def test_the_search_phrase_of_each_failure_fixture(log: Path) -> None:
    result = analyze_path(str(log), RECOGNISER)[-1].to_dict()
    search = search_for_log(result, str(log))
    seq = subject_seq(result)
    if seq is None:
        assert search is None  # nothing failed, nothing to search
        return
    assert search is not None and search.phrase
    assert not re.search(r"\d", search.phrase), search.phrase
    assert "/" not in search.phrase and "\\" not in search.phrase, search.phrase
    nearby = exception_names(log_window(str(log), seq, CONTEXT, CONTEXT)[0])
    if nearby:  # the exception it raised leads the phrase, short of a dotted name's numbered modules
        assert search.exception and any(name.endswith(search.exception) for name in nearby), (search, nearby)
        assert search.phrase.startswith(search.exception + ":")
    assert "vllm-project/vllm" in search.urls
    ascend = "vllm-project/vllm-ascend" in search.urls
    assert ascend == bool(re.search(r"(?i)\b(npu|ascend|hccl|aclnn|torch_npu|vllm_ascend|cann)\b", log.read_text(errors="replace")))
    for repo, url in search.urls.items():
        check_url(url, repo, search.phrase)


def test_paths_numbers_and_hashes_are_left_out() -> None:
    line = ("(EngineCore_0 pid=42) ERROR 01-02 03:04:05 [core.py:1] RuntimeError: failed to open "
            "/data/models/x/model-00001-of-00004.safetensors at 0x7f3a9c (sha 9f86d081884c7d65) after 3.5 s")
    search = community_search(line)
    assert search.phrase == "RuntimeError: failed to open at sha after s"
    assert search.exception == "RuntimeError"
    assert list(search.urls) == ["vllm-project/vllm"]


def test_analyze_prints_and_returns_the_search() -> None:
    log = REPO / "tests" / "fixtures" / "logs" / "failures" / "cuda_oom.log"
    text = workbench("analyze", str(log)).stdout
    assert "search: RuntimeError: CUDA error: out of memory" in text
    assert "https://github.com/vllm-project/vllm/issues?q=is%3Aissue+RuntimeError" in text
    data = json.loads(workbench("analyze", "--json", str(log)).stdout)
    assert data["community"]["exception"] == "RuntimeError"


def test_the_bundle_has_the_search(failed_session: Path, tmp_path: Path) -> None:  # noqa: F811
    out = bundle_session(failed_session, tmp_path / "bug.tar.gz")
    with tarfile.open(out) as archive:
        issue = next(archive.extractfile(m).read().decode() for m in archive.getmembers() if m.name.endswith("ISSUE.md"))
    assert "### Similar reports" in issue
    urls = re.findall(r"\((https://github\.com/[^)]+)\)", issue)
    assert urls and all(urlparse(u).path == "/vllm-project/vllm/issues" for u in urls)
    assert "ValueError" in issue.split("### Similar reports")[1]
