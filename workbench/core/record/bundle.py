"""`workbench bundle SESSION`: one .tar.gz for a bug report, with an ISSUE.md in vLLM's template.

Everything in a session is already written with secrets masked, but a server's own output can
print them (older vLLM prints `api_key` in its non-default args), so text files are scrubbed of
anything that looks like a secret on the way into the archive.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

from workbench.core.knowledge.community import issue_section
from workbench.core.logs.linesplit import LineSplitter
from workbench.core.logs.text import display_lines
from workbench.core.probes.envreport import report_text
from workbench.core.record.session import read_events
from workbench.core.secrets import MASK, mask_argv

_SECRET_TEXT = [
    re.compile(r"(?i)(--(?:api-key|hf-token|token|password)[ =])(\S+)"),
    re.compile(r"""(?i)(['"]?(?:api_key|hf_token|token|password|secret)['"]?\s*[:=]\s*['"])([^'"]+)(['"])"""),
    re.compile(r"(?i)\b([A-Z0-9_]*(?:TOKEN|_KEY|SECRET|PASSWORD)[A-Z0-9_]*=)(\S+)"),
    re.compile(r"\b()(hf_[A-Za-z0-9]{16,})()"),
    re.compile(r"\b()(sk-[A-Za-z0-9_-]{16,})()"),
]
TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
TEXT_SUFFIXES = {".log", ".jsonl", ".json", ".txt", ".toml", ".md", ".svg"}


def scrub_secrets(text: str) -> str:
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: m.group(1) + MASK + (m.group(3) if m.lastindex and m.lastindex >= 3 else ""),
                           text)
    return text


def _summaries(directory: Path) -> list[dict]:
    out = []
    for path in sorted((directory / "runs").glob("*/summary.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def _display_lines(log: Path) -> list[str]:
    """The log as the workbench numbers it: split on "\\n" only (a "\\r" progress frame is not a
    line), long lines cut as the store cuts them, colour escapes stripped, "\\r" frames folded."""
    try:
        data = log.read_bytes()
    except OSError:
        return []
    splitter = LineSplitter()
    raw = splitter.feed(data)[1] + splitter.flush()[1]
    return display_lines(raw)


def _context(log: Path, seq: int, before: int = 12, tail: int = 3) -> str:
    """Whole display lines ending with the root-cause line (and the few lines of its message
    after it), starting at its traceback when one begins within reach."""
    lines = _display_lines(log)
    if not 0 <= seq < len(lines):
        return ""
    start = max(0, seq - before)
    for i in range(seq, max(-1, seq - 80), -1):  # the traceback the exception line ends
        if TRACEBACK.search(lines[i]):
            start = i
            break
    end = seq
    while end + 1 < len(lines) and end - seq < tail and _continues(lines[end + 1]):
        end += 1
    return "\n".join(lines[start:end + 1])


def _continues(line: str) -> bool:
    # the exception's message goes on (pydantic's "  Value error, ..."); a new record does not
    message = line.split(") ", 1)[1] if line.startswith("(") and ") " in line else line
    return message.startswith((" ", "\t")) and not TRACEBACK.search(line)


def _flags(argv: list[str]) -> dict[str, str]:
    """`--flag value` and bare `--flag` (value "") of a command line."""
    flags: dict[str, str] = {}
    for i, token in enumerate(argv):
        if token.startswith("--"):
            name, eq, value = token.partition("=")
            if not eq:
                value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
            flags[name] = value
    return flags


def run_change(base: dict, event: dict) -> str:
    """What a run changed against the session's first run: flags added or changed, flags dropped,
    environment set or unset."""
    if event is base:
        return "-"
    before, after = _flags(base.get("argv", [])), _flags(event.get("argv", []))
    parts = [f"{k} {v}".strip() for k, v in after.items() if before.get(k) != v]
    parts += [f"no {k}" for k in before if k not in after]
    base_env, env = base.get("env_delta") or {}, event.get("env_delta") or {}
    parts += [f"{k}={v}" if v is not None else f"unset {k}" for k, v in env.items() if base_env.get(k) != v]
    parts += [f"unset {k}" for k in base_env if k not in env]
    return " ".join(parts) or "same command"


def _stuck_section(directory: Path, summaries: list[dict]) -> list[str]:
    """Where each hung run is stuck, from the stacks of all its processes."""
    from workbench.core.knowledge.stuckfiles import stuck_for_run

    out = []
    for s in summaries:
        stuck = s.get("stuck") or (stuck_for_run(directory / "runs" / s.get("run", "")) if s.get("dumps") else None)
        if not stuck or not stuck.get("summary") or not (s.get("verdict") == "hung" or stuck.get("stuck")):
            continue
        out.append(f"Where run {s.get('run')} is stuck, from the stacks of every process of its tree:\n\n```text\n"
                   + "\n".join(stuck["summary"]) + "\n```\n")
    return out


def issue_markdown(directory: Path) -> str:
    """vLLM's bug template: environment, the command, the root-cause error, what was tried, expected."""
    events = read_events(directory)
    started = {e["run"]: e for e in events if e.get("kind") == "run_started"}
    summaries = _summaries(directory)
    env_path = directory / "env.json"
    try:
        environment = report_text(json.loads(env_path.read_text()))
    except (OSError, ValueError, KeyError):
        environment = "(no environment report in this session: run `workbench env -- CMD`)\n"
    first = summaries[0] if summaries else {}
    failing = next((s for s in summaries if s.get("root_cause")), first)
    command = " ".join(mask_argv(started.get(first.get("run", ""), {}).get("argv", [])))
    root = failing.get("root_cause") or {}
    parts = [
        "### Your current environment\n",
        "<details><summary>The output of <code>workbench env</code></summary>\n\n```text\n" + environment + "```\n</details>\n",
        "### 🐛 Describe the bug\n",
        f"Command:\n\n```bash\n{command}\n```\n",
    ]
    if root:
        log = Path(failing.get("log", ""))
        local = directory / "runs" / failing.get("run", "") / "output.log"
        excerpt = _context(local if local.exists() else log, int(root.get("seq", 0)))
        parts.append(f"It fails with **{root.get('title', root.get('id'))}** (`{root.get('id')}`), "
                     f"in phase `{failing.get('last_phase')}`:\n\n```text\n{excerpt}\n```\n")
        if root.get("why"):
            parts.append(f"What the workbench knows about it: {root['why']}\n")
    else:
        parts.append(f"Verdict: `{first.get('verdict')}` ({first.get('reason', '')}).\n")
    if len(summaries) > 1 or any(s.get("dumps") for s in summaries):
        parts.append("What was tried:\n")
        parts.append("| run | cause | change | verdict | phase reached | root cause | seconds |\n|---|---|---|---|---|---|---|")
        base = started.get(first.get("run", ""), {})
        for s in summaries:
            event = started.get(s.get("run", ""), {})
            change = run_change(base, event) if event else "-"
            parts.append(f"| {s.get('run')} | {event.get('cause', '')} | {change} | {s.get('verdict')} | "
                         f"{s.get('last_phase')} | {(s.get('root_cause') or {}).get('id', '-')} | {s.get('seconds')} |")
        parts.append("")
        dumps = sum(len(s.get("dumps", [])) for s in summaries)
        if dumps:
            parts.append(f"{dumps} stack dump(s) of the process tree are in the bundle (`runs/*/stacks/`).\n")
    parts.extend(_stuck_section(directory, summaries))
    if root:  # the search a maintainer makes first (offline: links only)
        log = directory / "runs" / failing.get("run", "") / "output.log"
        parts.append(issue_section(failing, str(log) if log.exists() else failing.get("log")))
    parts.append("### Expected behaviour\n\nThe server starts (`Application startup complete.`) and answers "
                 "a chat completion.\n")
    parts.append(f"_Bundled by vLLM Workbench on {time.strftime('%Y-%m-%d')}; every file is in the archive._\n")
    return scrub_secrets("\n".join(parts))


def bundle_session(directory: Path, out: Path | None = None) -> Path:
    directory = Path(directory)
    out = out or Path(f"{directory.name}.tar.gz")
    prefix = directory.name
    with tarfile.open(out, "w:gz") as archive:
        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            archive.addfile(info, io.BytesIO(data))

        add_bytes("ISSUE.md", issue_markdown(directory).encode())
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if path.suffix in TEXT_SUFFIXES:
                data = scrub_secrets(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
            add_bytes(str(path.relative_to(directory)), data)
    out.chmod(0o600)
    return out
