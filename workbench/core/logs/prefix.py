"""vLLM's record prefix, split off for display: `(EngineCore_DP0 pid=7819) INFO 12-04 02:58:04
[core.py:77] message` becomes a short gutter (role and rank `EC0`, level `I`, `02:58:04`) and the
message, so a narrow pane shows what was said rather than who said it.

Display only: it runs per visible line, so it is one regex match and no allocation beyond the
result. Recognition keeps reading the whole line.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# `(NAME[ rank=N| TPn] pid=N) ` (0.9–0.33 spellings), then optionally vLLM's own
# `LEVEL MM-DD HH:MM:SS[.mmm] [file.py:N] `; either part may be missing.
_PREFIX = re.compile(
    r"(?:\((?P<name>[A-Za-z][\w\-]*)(?: (?:rank=)?(?P<extra>[A-Za-z]*\d+))? pid=(?P<pid>\d+)\) )?"
    r"(?:(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d (?P<time>\d\d:\d\d:\d\d)(?:[.,]\d+)? "
    r"\[(?P<where>[^\]\s]+)\] ?)?"
)
_RANK = re.compile(r"(\d+)(?!.*\d)")  # the last number in a process name: its rank
ROLE_WIDTH = 4
GUTTER_WIDTH = ROLE_WIDTH + 1 + 1 + 8 + 1  # role, level mark, space, HH:MM:SS, space


class Prefix(NamedTuple):
    role: str  # "EC0", "W1", "API", "" when the line has no process prefix
    level: str  # "I", "W", "E", "D", "C" or ""
    time: str  # "HH:MM:SS" or ""
    pid: int | None
    message_start: int  # index in the line where the message begins


def role_of(name: str, extra: str | None = None) -> str:
    """`EngineCore_DP0` → EC0, `Worker_TP1` / `VllmWorker TP1` / `VllmWorker-2` → W1/W2, `APIServer` → API."""
    lower = name.lower()
    if "engine" in lower:
        short = "EC"
    elif "worker" in lower:
        short = "W"
    elif "api" in lower:
        short = "API"
    else:
        short = name[:2]
    found = _RANK.search(extra or "") or _RANK.search(name)
    rank = found.group(1) if found else ""
    return (short + rank) if short != "API" or rank else short


def split_prefix(line: str) -> Prefix:
    """The prefix of a vLLM line, or an empty one (message_start 0) when it has none."""
    match = _PREFIX.match(line)
    if match is None or match.end() == 0:
        return Prefix("", "", "", None, 0)
    name = match.group("name")
    level = match.group("level")
    pid = match.group("pid")
    return Prefix(role_of(name, match.group("extra")) if name else "", level[0] if level else "",
                  match.group("time") or "", int(pid) if pid else None, match.end())


def gutter(prefix: Prefix) -> str:
    """The fixed-width text of the gutter (colour is the view's business)."""
    return f"{prefix.role[:ROLE_WIDTH]:<{ROLE_WIDTH}}{prefix.level or ' '} {prefix.time or ' ' * 8} "
