"""`workbench analyze`: the live recognisers over log files, a session, or stdin."""

from __future__ import annotations

import io
import json
import mmap
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from workbench.core.knowledge.diagnosis import Diagnosis, Recogniser
from workbench.core.knowledge.hangs import hang_of
from workbench.core.knowledge.matcher import RawLines
from workbench.core.knowledge.prefixes import unwrap_block
from workbench.core.knowledge.records import log_timestamp
from workbench.core.knowledge.requests import annotate_client_errors
from workbench.core.knowledge.verdicts import HUNG, offline_verdict
from workbench.core.logs.linesplit import LineSplitter
from workbench.core.logs.text import display_text
from workbench.core.tomlfile import DataFileError, load_toml

CHUNK = 4 * 1024 * 1024


class LogInputError(Exception):
    """A log that cannot be read (missing, a directory without runs, no permission)."""


@dataclass
class Analysis:
    source: str
    diagnosis: Diagnosis
    lines: int
    stuck: dict | None = None  # a session's run: where its last stack dump says it is stuck

    def to_dict(self) -> dict[str, Any]:
        diag = self.diagnosis
        annotate_client_errors(diag.findings.values())
        root = diag.root_cause()
        verdict = offline_verdict(diag)
        hang = hang_of(diag, diag.last_seq) if verdict == HUNG else None
        return {
            "source": self.source,
            "verdict": verdict,
            "root_cause": root.root_cause_dict() if root else None,
            "phases": diag.phases.to_list(),
            "last_phase": diag.phases.current,
            "findings": [f.to_dict() for f in diag.findings_list()],
            "lines": self.lines,
            "stuck": self.stuck,
            **({"hang": hang.to_dict() | {"says": hang.sentence()}} if hang else {}),
        }


def analyze_stream(stream: BinaryIO, recogniser: Recogniser, source: str,
                   env: dict[str, str] | None = None, argv: list[str] | None = None) -> Analysis:
    """Blocks of whole lines that are plain printable ASCII (nearly every vLLM log) are
    scanned raw: one Hyperscan pass, newlines counted in C, and only the lines that match
    are decoded. Any other block goes through the splitter and `display_text`, as live."""
    diagnosis = Diagnosis(recogniser, env=env, argv=argv)  # the run's own, when known
    splitter = LineSplitter()
    matcher = recogniser.matcher
    seq = 0
    carry = b""  # an unfinished last line, waiting for the next read
    origin_known = False

    def feed(lines: Sequence[str], text: str | None, hits: list[tuple[int, int]] | None,
             display: Sequence[str] | None = None) -> None:
        nonlocal seq, origin_known
        if not lines:
            return
        if not origin_known:
            for i in range(min(1000, len(lines))):  # by index: `lines` may be lazy
                line = lines[i]
                if log_timestamp(line) is not None:
                    diagnosis.note_origin(line)
                    origin_known = True
                    break
        diagnosis.feed(seq, lines, now=None, text=text, hits=hits, display=display)
        seq += len(lines)

    def slow(data: bytes, final: bool = False) -> None:
        _starts, raw = splitter.feed(data)
        if final:
            raw = raw + splitter.flush()[1]
        text = display_text(raw) if raw else ""
        feed(text.split("\n") if raw else [], text, None)

    read = _mapped_reader(stream) or (lambda: stream.read(CHUNK))
    while True:
        chunk = read()
        if not chunk:
            slow(carry, final=True)
            break
        buf = carry + chunk if carry else chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0 or splitter.pending:
            slow(buf)  # a line longer than a read, or the rest of one the splitter cut
            carry = b""
            continue
        body, carry = (buf[:cut], buf[cut:]) if cut < len(buf) else (buf, b"")
        short = _short_lines(body, splitter.cap)
        # a block wrapped by a deployment (compose, kubectl, journald, timestamps) from its first
        # line: unwrapped in one pass, scanned like a bare log; findings show the lines as written
        bare = unwrap_block(body) if short else None
        found = matcher.scan_raw(body if bare is None else bare) if short else None
        if found is None:
            slow(body)
        else:
            hits, lines = found
            feed(lines, None, hits, None if bare is None else RawLines(body, len(lines), {}))
    diagnosis.finish()
    return Analysis(source, diagnosis, seq)


def _mapped_reader(stream: BinaryIO) -> Callable[[], bytes] | None:
    """For a regular file: blocks of about CHUNK bytes cut after a newline, sliced from a map
    of the file (one copy, no carry to join), so nearly every block takes the raw path whole."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
        size = info.st_size
        if not stat.S_ISREG(info.st_mode) or size == 0 or stream.tell() != 0:
            return None
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    pos = 0

    def read() -> bytes:
        nonlocal pos
        if pos >= size:
            mapped.close()
            return b""
        # batches end where a plain read of CHUNK bytes would end them (the last newline
        # before a multiple of CHUNK): a phase's time looks back within its batch only
        stop = (pos // CHUNK + 1) * CHUNK
        while stop < size and mapped.rfind(b"\n", pos, stop) < 0:
            stop += CHUNK
        stop = size if stop >= size else mapped.rfind(b"\n", pos, stop) + 1
        block = mapped[pos:stop]
        pos = stop
        return block

    return read


def _short_lines(block: bytes, cap: int) -> bool:
    """No line of `block` (which starts a line) is longer than `cap`: every half-cap window
    holds a newline. A few hundred `find`s that stop at the first newline."""
    step = cap // 2
    find = block.find
    return all(find(b"\n", i, i + step) >= 0 for i in range(0, len(block), step))


def session_logs(path: Path) -> list[Path]:
    """The raw logs of a session directory, in run order."""
    logs = sorted(path.glob("runs/*/output.log"))
    if not logs:
        raise LogInputError(f"{path}: a directory, but not a session with run logs")
    return logs


def run_context(run_dir: Path) -> tuple[dict[str, str] | None, list[str] | None]:
    """The env and argv a recorded run was started with (its recipe and the session's
    environment report), so that errors can name the values that came from them."""
    try:
        recipe = load_toml(run_dir / "recipe.toml")[0]
        report = json.loads((run_dir.parent.parent / "env.json").read_text())
    except (OSError, ValueError, DataFileError):
        return None, None
    env = {**report.get("env", {}), **recipe.get("env", {})}
    command = recipe.get("command")
    return env, command if isinstance(command, list) else None


def analyze_path(path: str, recogniser: Recogniser, env: dict[str, str] | None = None,
                 argv: list[str] | None = None) -> list[Analysis]:
    if path == "-":
        import sys

        return [analyze_stream(sys.stdin.buffer, recogniser, "<stdin>")]
    p = Path(path)
    if p.is_dir():
        from workbench.core.knowledge.stuckfiles import stuck_for_run

        analyses = [analyze_path(str(log), recogniser, *run_context(log.parent))[0] for log in session_logs(p)]
        for analysis in analyses:
            analysis.stuck = stuck_for_run(Path(analysis.source).parent)
        return analyses
    try:
        with open(p, "rb") as handle:
            return [analyze_stream(handle, recogniser, str(p), env, argv)]
    except FileNotFoundError:
        raise LogInputError(f"{path}: no such file") from None
    except PermissionError:
        raise LogInputError(f"{path}: permission denied") from None
    except IsADirectoryError:  # pragma: no cover - handled above
        raise LogInputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise LogInputError(f"{path}: cannot read ({os.strerror(exc.errno or 0)})") from None


def analyze_text(text: str, recogniser: Recogniser, source: str = "<text>") -> Analysis:
    return analyze_stream(io.BytesIO(text.encode()), recogniser, source)
