"""Read TOML data files and report problems with file, line and key — never a traceback."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass
class DataFileError(Exception):
    """A problem in a user-editable data file, located as precisely as we can."""

    path: str
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "")
        key = f" [{self.key}]" if self.key else ""
        return f"{where}:{key} {self.message}"


_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def load_toml(path: Path | str) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; return (data, text). Raise DataFileError with the line on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(str(path), f"cannot read: {exc}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION.search(str(exc))
        line = int(found.group(1)) if found else None
        if line is None and "end of document" in str(exc):  # the last line is where it broke
            line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        message = _TOML_POSITION.sub("", str(exc)).replace(" (at end of document)", "").strip()
        raise DataFileError(str(path), f"invalid TOML: {message}", line=line) from None


def locate(text: str, key: str, array: str | None = None, index: int = 0) -> int | None:
    """Best-effort line number of `key` in the `index`-th `[[array]]` table (or top level)."""
    lines = text.splitlines()
    begin, end = 0, len(lines)
    if array is not None:
        header = re.compile(r"^\s*\[\[\s*" + re.escape(array) + r"\s*\]\]")
        headers = [i for i, line in enumerate(lines) if header.match(line)]
        if index < len(headers):
            begin = headers[index]
            later = [
                i for i, line in enumerate(lines) if i > begin and re.match(r"^\s*\[\[?\s*[\w.\"-]+", line)
                and not re.match(r"^\s*\[\[?\s*" + re.escape(array) + r"\.", line)
            ]
            end = later[0] if later else len(lines)
        elif headers:
            return headers[-1] + 1
    leaf = key.split(".")[-1]
    pattern = re.compile(r"^\s*(?:\"?" + re.escape(leaf) + r"\"?)\s*=")
    for i in range(begin, end):
        if pattern.match(lines[i]):
            return i + 1
    header = re.compile(r"^\s*\[\[?\s*(?:[\w\"-]+\.)*\"?" + re.escape(leaf) + r"\"?\s*[\].]")
    for i in range(begin, end):  # a table named after the key: [key], [key.x], [x.key]
        if header.match(lines[i]):
            return i + 1
    inline = re.compile(r"[{,]\s*\"?" + re.escape(leaf) + r"\"?\s*=")
    for i in range(begin, end):  # a key of an inline table: x = { key = 1 }
        if inline.search(lines[i]):
            return i + 1
    return begin + 1 if array is not None and begin < len(lines) else None
