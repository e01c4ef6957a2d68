"""`workbench analyze`: the live recognisers over log files, a session, or stdin."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .diagnosis import Diagnosis, Recogniser, log_timestamp
from .linesplit import LineSplitter
from .text import display_text
from .verdicts import offline_verdict

CHUNK = 4 * 1024 * 1024


class LogInputError(Exception):
    """A log that cannot be read (missing, a directory without runs, no permission)."""


@dataclass
class Analysis:
    source: str
    diagnosis: Diagnosis
    lines: int

    def to_dict(self) -> dict[str, Any]:
        diag = self.diagnosis
        root = diag.root_cause()
        verdict = offline_verdict(diag)
        return {
            "source": self.source,
            "verdict": verdict,
            "root_cause": root.root_cause_dict() if root else None,
            "phases": diag.phases.to_list(),
            "last_phase": diag.phases.current,
            "findings": [f.to_dict() for f in diag.findings_list()],
            "lines": self.lines,
        }


def analyze_stream(stream: BinaryIO, recogniser: Recogniser, source: str) -> Analysis:
    diagnosis = Diagnosis(recogniser)
    splitter = LineSplitter()
    seq = 0
    origin_known = False
    while True:
        chunk = stream.read(CHUNK)
        final = not chunk
        if final:
            _starts, raw = splitter.flush()
        else:
            _starts, raw = splitter.feed(chunk)
        text = display_text(raw) if raw else ""
        lines = text.split("\n") if raw else []
        if lines and not origin_known:
            for line in lines[:1000]:
                if log_timestamp(line) is not None:
                    diagnosis.note_origin(line)
                    origin_known = True
                    break
        diagnosis.feed(seq, lines, now=None, text=text)
        seq += len(lines)
        if final:
            break
    diagnosis.finish()
    return Analysis(source, diagnosis, seq)


def session_logs(path: Path) -> list[Path]:
    """The raw logs of a session directory, in run order."""
    logs = sorted(path.glob("runs/*/output.log"))
    if not logs:
        raise LogInputError(f"{path}: a directory, but not a session with run logs")
    return logs


def analyze_path(path: str, recogniser: Recogniser) -> list[Analysis]:
    if path == "-":
        import sys

        return [analyze_stream(sys.stdin.buffer, recogniser, "<stdin>")]
    p = Path(path)
    if p.is_dir():
        return [analyze_path(str(log), recogniser)[0] for log in session_logs(p)]
    try:
        with open(p, "rb") as handle:
            return [analyze_stream(handle, recogniser, str(p))]
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
