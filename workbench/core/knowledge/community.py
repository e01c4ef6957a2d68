"""Has someone reported this before? The search a maintainer makes first: the error's distinctive
phrase (exception type and message, without paths, numbers and hashes, which differ between
reports of the same bug) and the issue-search links of vLLM and, on Ascend, vllm-ascend.
Offline: it only builds the links."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from workbench.core.knowledge.records import BENIGN_EXCEPTIONS, EXCEPTION_AT_START, parse_record

REPOSITORIES = {"any": ("vllm-project/vllm",), "ascend": ("vllm-project/vllm-ascend", "vllm-project/vllm")}
MAX_WORDS = 14
CONTEXT = 40  # lines either side of the root cause searched for the exception it raised
ASCEND_WORDS = re.compile(r"(?i)\b(npu|ascend|hccl|aclnn|torch_npu|vllm_ascend|cann)\b")
_URL = re.compile(r"\S+://\S+")
_LEADING_TAGS = re.compile(r"^(?:\[[^\]]*\]:?\s*|\([^)]*pid=\d+\)\s*)+")
_WORD = re.compile(r"^[A-Za-z_][\w.'-]*[:,]?$")


@dataclass
class CommunitySearch:
    phrase: str
    exception: str = ""
    urls: dict[str, str] = field(default_factory=dict)  # repository -> issue-search URL

    def to_dict(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "exception": self.exception, "urls": dict(self.urls)}

    def text(self) -> str:
        return "\n".join([f"search: {self.phrase}", *(f"  {repo}: {url}" for repo, url in self.urls.items())])


def _message(line: str) -> str:
    return _LEADING_TAGS.sub("", parse_record(line)[3].strip())


def clean(text: str) -> str:
    """The words that stay the same between two reports: no URLs, paths, numbers or hashes."""
    words = []
    for raw in _URL.sub(" ", text).split():
        if "/" in raw or "\\" in raw or any(c.isdigit() for c in raw):
            continue  # a path, a size, a shape, an address, a hash, a rank
        word = raw.strip("()[]{}<>\"'`,;=|")
        if word.endswith(":") and not word[:-1]:
            continue
        if word and _WORD.match(word):
            words.append(word)
    return " ".join(words[:MAX_WORDS]).rstrip(":,")


def _exception_near(lines: Sequence[str], index: int, root_message: str) -> tuple[str, str] | None:
    """(type, message) of the exception the root cause raised: its own line, else the nearest
    exception line that repeats its message, else the nearest one after it."""
    found = EXCEPTION_AT_START.match(_message(lines[index])) if 0 <= index < len(lines) else None
    if found and found.group(1) not in BENIGN_EXCEPTIONS:
        return found.group(1), found.group(2) or ""
    order = sorted(range(max(0, index - CONTEXT), min(len(lines), index + CONTEXT + 1)),
                   key=lambda i: (abs(i - index), i < index))
    after = fallback = None
    for i in order:
        found = EXCEPTION_AT_START.match(_message(lines[i]))
        if not found or found.group(1) in BENIGN_EXCEPTIONS:
            continue
        detail = found.group(2) or ""
        if root_message and clean(root_message) and clean(root_message) in clean(detail):
            return found.group(1), detail
        if after is None and i > index:
            after = (found.group(1), detail)
        if fallback is None:
            fallback = (found.group(1), detail)
    chosen = after or fallback
    if chosen is not None:
        return chosen[0], root_message  # the type it raised, the message the root cause names
    return None


def search_urls(phrase: str, platform: str = "any") -> dict[str, str]:
    query = urlencode({"q": f"is:issue {phrase}"})
    return {repo: f"https://github.com/{repo}/issues?{query}" for repo in REPOSITORIES.get(platform, REPOSITORIES["any"])}


def platform_of(texts: Sequence[str], signature_platform: str = "any") -> str:
    if signature_platform == "ascend" or any(ASCEND_WORDS.search(t) for t in texts):
        return "ascend"
    return "any"


def community_search(line: str, context: Sequence[str] = (), index: int = -1,
                     signature_platform: str = "any") -> CommunitySearch:
    """The search for one finding's line; `context` holds the log lines around it, `index` its place."""
    message = _message(line)
    near = _exception_near(context, index, message) if context else None
    if near is None:
        found = EXCEPTION_AT_START.match(message)
        near = (found.group(1), found.group(2) or "") if found else ("", message)
    exception, detail = near
    if any(c.isdigit() for c in exception):  # vllm.v1.engine.exceptions.EngineDeadError: the class says it
        exception = exception.rsplit(".", 1)[-1]
    words = clean(detail)
    phrase = f"{exception}: {words}" if exception and words else (exception or words)
    platform = platform_of([line, *context], signature_platform)
    return CommunitySearch(phrase, exception, search_urls(phrase, platform))


def search_for_result(result: dict[str, Any], lines: Sequence[str], first_seq: int = 0,
                      signature_platform: str = "any") -> CommunitySearch | None:
    """The search for an analysis result's root cause; `lines` start at log line `first_seq`."""
    root = result.get("root_cause")
    if not root:  # no root cause: the first error (or warning) found still deserves its search
        ranked = [f for f in result.get("findings", []) if not f.get("benign") and f["severity"] in ("error", "warning")]
        ranked.sort(key=lambda f: (f["severity"] != "error", f.get("first_seq", 0)))
        if not ranked:
            return None
        root = {"line": ranked[0]["line"], "seq": ranked[0].get("first_seq", 0), "id": ranked[0]["id"]}
    return community_search(root["line"], lines, int(root.get("seq", 0)) - first_seq, signature_platform)


def subject_seq(result: dict[str, Any]) -> int | None:
    """The log line the search is about (for reading its context), or None."""
    root = result.get("root_cause")
    if root:
        return int(root.get("seq", 0))
    found = [f for f in result.get("findings", []) if not f.get("benign") and f["severity"] in ("error", "warning")]
    found.sort(key=lambda f: (f["severity"] != "error", f.get("first_seq", 0)))
    return int(found[0].get("first_seq", 0)) if found else None


def search_for_log(result: dict[str, Any], log_path: str | None, signature_platform: str = "any") -> CommunitySearch | None:
    """The search for an analysis of a log file, with the lines around its subject read from the file."""
    seq = subject_seq(result)
    if seq is None:
        return None
    lines, first = log_window(log_path, seq) if log_path else ([], 0)
    return search_for_result(result, lines, first, signature_platform)


def log_window(path: str, seq: int, before: int = CONTEXT, after: int = CONTEXT) -> tuple[list[str], int]:
    """(display lines around line `seq` of a raw log, the seq of the first), read in blocks."""
    from workbench.core.logs.linesplit import LineSplitter
    from workbench.core.logs.text import display_lines

    splitter = LineSplitter()
    first, last = max(0, seq - before), seq + after
    kept: list[bytes] = []
    count = 0
    try:
        with open(path, "rb") as handle:
            while count <= last:
                block = handle.read(1 << 20)
                raw = splitter.feed(block)[1] if block else splitter.flush()[1]
                kept.extend(raw[max(0, first - count): max(0, last + 1 - count)])
                count += len(raw)
                if not block:
                    break
    except OSError:
        return [], 0
    return display_lines(kept), first


def issue_section(result: dict[str, Any], log_path: str | None) -> str:
    """ISSUE.md's "similar reports" section: the phrase and where to look, or "" when nothing failed."""
    search = search_for_log(result, log_path)
    if search is None:
        return ""
    links = "\n".join(f"- [{repo} issues]({url})" for repo, url in search.urls.items())
    return f"### Similar reports\n\nSearched for `{search.phrase}`:\n\n{links}\n"
