"""Split any log line into (prefix fields, level, time, process, message), whatever wraps it.

Real logs arrive wrapped: docker compose (`vllm-1  | `), `kubectl logs --prefix`
(`[pod/name/container] `), journald/syslog (`Dec 04 03:01:15 host vllm[1234]: `), ISO or
`ts` timestamps, CI wrappers (`[2025-12-13T19:54:35Z] `), Ray (`(RayWorkerWrapper pid=N,
ip=...)`), torch's `[rank0]:`, torch C++/glog records (`[E1001 16:06:04.537 File.cpp:607] `),
Ascend's `[ERROR] 2025-10-15-16:32:16 (PID:3132, Device:0, RankID:-1) ` and vLLM's own
`(APIServer pid=N) LEVEL MM-DD HH:MM:SS [file.py:N] `, in any combination.

`canonical()` removes what vLLM itself would not print and rewrites the foreign record headers
(glog, Ascend) as vLLM record headers, so every pattern of the knowledge base reads a wrapped
line exactly as it reads a bare one. The process label (vLLM's, Ray's or the torch rank) is the
line's source: deployment fields (container, pod, host) are kept as fields only, so the
lines of one process pair up however each was wrapped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTHS.split("|"))}

# Wrappers that carry no vLLM meaning; tried in this order at the start of a line, repeatedly.
DEPLOYMENT_PREFIXES: dict[str, str] = {
    # `kubectl logs --prefix`: [pod/<pod>/<container>]
    "kubectl": r"\[(?P<pod>pod/[^\]\s/]+/[^\]\s]+)\] ",
    # journald / syslog: "Dec 04 03:01:15 host ident[pid]: "
    "syslog": (
        r"(?P<syslog_time>(?:" + _MONTHS + r") [ \d]\d \d\d:\d\d:\d\d) "
        r"(?P<host>[\w.-]+) (?P<ident>[\w.@/-]+)(?:\[(?P<ident_pid>\d+)\])?: "
    ),
    # moreutils `ts` (default "%b %d %H:%M:%S", optional fraction)
    "ts": r"(?P<ts_time>(?:" + _MONTHS + r") [ \d]\d \d\d:\d\d:\d\d)(?:\.\d+)? ",
    # ISO 8601 / RFC 3339 (docker logs -t, kubectl --timestamps, CI), bare or in brackets
    "iso": (
        r"\[?(?P<iso_time>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:[.,]\d+)?"
        r"(?:Z|[+-]\d\d:?\d\d)?\]? (?:- [\w.]+ - [A-Z]+ - )?"
    ),
    # docker compose: "<service>-<n>  | " (v2) or "<service>_<n>  | " (v1)
    "compose": r"(?P<container>[A-Za-z0-9][\w.-]*[-_]\d+) *\| ?",
}

# Process labels: they say which process printed the line.
PROCESS_PREFIXES: dict[str, str] = {
    "ray": r"\((?P<ray>[\w.:-]+ pid=\d+, ip=[0-9a-fA-F.:]+(?:, [^()]*)?)\) ",
    "rank": r"\[(?P<rank>rank\d+)\]: ?",
}

# Foreign record headers, rewritten as vLLM's "LEVEL MM-DD HH:MM:SS [where] ".
# torch >= 2.4 "[E1001 16:06:04.537 File.cpp:607] ", torch 2.3 "[E File.cpp:563] " (no time)
GLOG = (
    r"\[(?P<glog_level>[EWIF])(?:(?P<glog_md>\d{4}) (?P<glog_time>\d\d:\d\d:\d\d)(?:\.\d+)?)? (?:\d+ )?"
    r"(?P<glog_where>[\w.-]+:\d+)\] ?"
)
ASCEND = (
    r"\[(?P<asc_level>ERROR|WARNING|INFO|DEBUG)\] (?P<asc_date>\d{4}-\d\d-\d\d)-(?P<asc_time>\d\d:\d\d:\d\d)"
    r"(?:\.\d+)* \((?P<asc_where>PID:\s*\d+[^)]*)\) "
)
_GLOG_LEVELS = {"E": "ERROR", "W": "WARNING", "I": "INFO", "F": "CRITICAL"}

# vLLM's own process label: "(APIServer pid=1) ", "(VllmWorker rank=0 pid=5) "
VLLM_PROC = r"\((?P<proc>[^()]*?pid=\d+)\) "
VLLM_HEADER = re.compile(
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<ts>\d\d-\d\d \d\d:\d\d:\d\d)(?:[.,]\d+)?\s+"
    r"(?:\[[^\]]*\]+|[\w./-]+:\d+\])\s?"
)

_STYLES = {**DEPLOYMENT_PREFIXES, **PROCESS_PREFIXES}
_ANY_FOREIGN = re.compile("|".join(f"(?:{p})" for p in (*_STYLES.values(), GLOG, ASCEND, r"\^\[\[")))
_STYLE_RX = {name: re.compile(p) for name, p in _STYLES.items()}
_GLOG_RX = re.compile(GLOG)
_ASCEND_RX = re.compile(ASCEND)
_VLLM_PROC_RX = re.compile(VLLM_PROC)

# For the matcher: one anchored pattern per wrapper, so a wrapped line is found in the same
# pass that finds everything else (a bare log costs nothing more).
def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


DETECT_PATTERNS: dict[str, str] = {
    name: _unnamed(p) for name, p in {
        **{name: "^" + p for name, p in _STYLES.items()},
        "glog": "^" + GLOG,
        "ascend": "^" + ASCEND,
        # a second vLLM label after the first: "(vLLMHttpServer pid=1) (Worker_TP1 pid=2) "
        "nested": "^" + VLLM_PROC + VLLM_PROC,
        "caret": r"^\^\[\[[0-9;]*m",
        # a wrapper after vLLM's own label: "(EngineCore pid=1) [rank0]:[E...] ..."
        "inner": "^" + VLLM_PROC + r"(?:" + PROCESS_PREFIXES["rank"] + "|" + GLOG + "|" + ASCEND + ")",
    }.items()
}


@dataclass
class LineParts:
    """What one line says about itself, prefixes removed."""

    fields: dict[str, str] = field(default_factory=dict)  # every wrapper's own fields
    level: str | None = None
    time: str | None = None  # "MM-DD HH:MM:SS" whichever prefix gave it
    process: str = ""  # vLLM's label, else Ray's, else the torch rank
    header: str = ""  # the (rewritten) vLLM record header, "" when the line has none
    message: str = ""

    def canonical(self) -> str:
        """The line as vLLM itself would print it."""
        label = self.fields.get("proc") or self.fields.get("ray") or ""
        return (f"({label}) " if label else "") + self.header + self.message


# ANSI colours shown in caret notation by `cat -v` / less ("^[[1;36m(Worker pid=1)^[[0;0m")
_CARET_ESCAPE = re.compile(r"\^\[\[[0-9;]*m")


def split_line(line: str) -> LineParts:
    parts = LineParts()
    rest = _CARET_ESCAPE.sub("", line) if "^[[" in line else line
    while True:
        rest, moved = _strip_one(rest, parts)
        if not moved:
            break
    found = VLLM_HEADER.match(rest)
    if found is not None:
        parts.level = parts.level or found.group("level")
        parts.time = parts.time or found.group("ts")
        parts.header += found.group(0)
        rest = rest[found.end():]
    parts.message = rest
    f = parts.fields
    parts.process = " ".join(x for x in (f.get("proc"), f.get("ray"), f.get("rank")) if x)
    return parts


def _strip_one(rest: str, parts: LineParts) -> tuple[str, bool]:
    f = parts.fields
    proc = _VLLM_PROC_RX.match(rest)
    if proc is not None:
        # the innermost vLLM label names the process ("(Outer pid=1) (Worker_TP1 pid=2)")
        if "proc" in f:
            f["outer_proc"] = f["proc"]
        f["proc"] = proc.group("proc")
        return rest[proc.end():], True
    for rx in _STYLE_RX.values():
        found = rx.match(rest)
        if found is not None:
            f.update({k: v for k, v in found.groupdict().items() if v is not None})
            if parts.time is None:
                parts.time = _time_of(found.groupdict())
            return rest[found.end():], True
    glog = _GLOG_RX.match(rest)
    if glog is not None:
        md, t = glog.group("glog_md"), glog.group("glog_time")
        parts.level = _GLOG_LEVELS[glog.group("glog_level")]
        if md is not None:  # without a time it cannot be a vLLM header: the message is enough
            parts.time = parts.time or f"{md[:2]}-{md[2:]} {t}"
            parts.header += f"{parts.level} {md[:2]}-{md[2:]} {t} [{glog.group('glog_where')}] "
        return rest[glog.end():], True
    asc = _ASCEND_RX.match(rest)
    if asc is not None:
        date, t = asc.group("asc_date"), asc.group("asc_time")
        parts.level = asc.group("asc_level")
        parts.time = parts.time or f"{date[5:]} {t}"
        f["ascend"] = asc.group("asc_where")
        parts.header += f"{parts.level} {date[5:]} {t} [{asc.group('asc_where')}] "
        return rest[asc.end():], True
    return rest, False


def _time_of(groups: dict[str, str | None]) -> str | None:
    iso = groups.get("iso_time")
    if iso:
        return f"{iso[5:10]} {iso[11:19]}"
    stamp = groups.get("syslog_time") or groups.get("ts_time")
    if stamp:
        month, day, clock = stamp.split(None, 2)
        return f"{_MONTH_NUMBER[month]:02d}-{int(day):02d} {clock}"
    return None


# The common case in one C-level match: deployment wrappers only, then a bare vLLM line.
_DEPLOYMENT_RUN = re.compile("(?:" + "|".join(DEPLOYMENT_PREFIXES.values()) + ")+")
_NEEDS_SPLIT = re.compile(r"\[|\^\[\[|\([^()]*\) ?(?:\[|\(|\^\[\[)")


# The same over whole raw blocks: a log wrapped on every line is unwrapped in one C pass (the
# literal newline in front lets `re` skip from line to line instead of trying every byte).
_DEPLOYMENT_RUN_BYTES = re.compile(b"(?:" + "|".join(DEPLOYMENT_PREFIXES.values()).encode() + b")+")
_NEWLINE_RUN_BYTES = re.compile(b"\n" + _DEPLOYMENT_RUN_BYTES.pattern)


def unwrap_block(block: bytes) -> bytes | None:
    """`block` (whole lines) with the deployment wrappers removed from every line, or None when
    its first line is not wrapped (the line count never changes)."""
    first = _DEPLOYMENT_RUN_BYTES.match(block)
    if first is None:
        return None
    return _NEWLINE_RUN_BYTES.sub(b"\n", block[first.end():])


def canonical(line: str) -> str:
    """`line` with foreign wrappers removed and foreign headers rewritten (see the module doc)."""
    wrapped = _DEPLOYMENT_RUN.match(line)
    if wrapped is not None:
        rest = line[wrapped.end():]
        if _NEEDS_SPLIT.match(rest) is None:
            return rest
    elif not _ANY_FOREIGN.search(line):
        return line
    return split_line(line).canonical()


def line_time(line: str) -> str | None:
    """The line's own "MM-DD HH:MM:SS", from whichever prefix carries one."""
    return split_line(line).time
