"""Screenshots (the palette's "Screenshot"): an SVG saved into the session directory, with the
spaces between styled segments kept.

Rich's SVG export leaves out runs of plain spaces and places the next segment by its x: drawn
right, but a viewer or a copy that flows the text loses them (`r1/tmp/...`, `servingup 57s`).
The spaces are put back into the segment that follows the gap.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

_TEXT = re.compile(r'<text (?P<pre>[^>]*?)x="(?P<x>[\d.]+)"(?P<mid>[^>]*?)textLength="(?P<len>[\d.]+)"'
                   r'(?P<post>[^>]*?clip-path="url\(#(?P<line>[^)]+)\)")>(?P<text>[^<]*)</text>')


def _cells(escaped: str) -> int:
    return len(html.unescape(escaped))


def svg_with_spaces(svg: str) -> str:
    """The SVG with each gap before a text element on its line filled with no-break spaces."""
    sample = next((m for m in _TEXT.finditer(svg) if _cells(m["text"])), None)
    if sample is None:
        return svg
    char_width = float(sample["len"]) / _cells(sample["text"])
    ends: dict[str, float] = {}

    def fill(match: re.Match[str]) -> str:
        x, length, line = float(match["x"]), float(match["len"]), match["line"]
        gap = round((x - ends.get(line, 0.0)) / char_width)
        ends[line] = x + length
        if gap <= 0:
            return match.group(0)
        x -= gap * char_width
        return (f'<text {match["pre"]}x="{x:g}"{match["mid"]}textLength="{length + gap * char_width:g}"'
                f'{match["post"]}>{"&#160;" * gap}{match["text"]}</text>')

    return _TEXT.sub(fill, svg)


class Screenshots:
    """Mixed into the app: the palette's Screenshot writes to the session, and says where."""

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        session = getattr(self.engine, "session", None)
        directory = Path(path) if path else (Path(session.dir) if session is not None else Path.cwd()) / "screenshots"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            target = directory / (filename or f"screen-{time.strftime('%Y%m%d-%H%M%S')}.svg")
            target.write_text(svg_with_spaces(self.export_screenshot()), encoding="utf-8")
        except OSError as exc:
            self.note(f"screenshot not saved: {exc}")
            return None
        self.note(f"screenshot saved: {target}")
        return str(target)
