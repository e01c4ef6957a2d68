"""A short sampling profile of one process: py-spy record → a flame graph SVG and a speedscope file.

One py-spy run in `raw` (collapsed stacks) format with --nonblocking, so the server is never
paused; both pictures are rendered from that one sample set by us.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import psutil

from workbench.core.probes.stacks import (
    PTRACE_HELP,
    _resume_if_we_stopped,
    py_spy_path,
    state_letter,
)
from workbench.core.record.session import write_private

Stacks = dict[tuple[str, ...], int]  # root→leaf frames → samples


@dataclass
class ProfileResult:
    pid: int
    seconds: float
    samples: int = 0
    paths: dict[str, str] = field(default_factory=dict)  # svg, speedscope, raw
    top: list[str] = field(default_factory=list)  # hottest leaf frames with their share
    error: str = ""


def parse_collapsed(text: str) -> Stacks:
    """`frame;frame;frame COUNT` lines (flamegraph.pl's collapsed format)."""
    stacks: Stacks = {}
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        key = tuple(stack.split(";"))
        stacks[key] = stacks.get(key, 0) + int(count)
    return stacks


def hottest(stacks: Stacks, n: int = 10) -> list[tuple[str, int, float]]:
    total = sum(stacks.values()) or 1
    leaves: dict[str, int] = {}
    for frames, count in stacks.items():
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
    ranked = sorted(leaves.items(), key=lambda item: -item[1])[:n]
    return [(name, count, count / total) for name, count in ranked]


def to_speedscope(stacks: Stacks, name: str) -> dict:
    frames: list[dict[str, str]] = []
    index: dict[str, int] = {}
    samples, weights = [], []
    for stack, count in sorted(stacks.items()):
        ids = []
        for frame in stack:
            if frame not in index:
                index[frame] = len(frames)
                frames.append({"name": frame})
            ids.append(index[frame])
        samples.append(ids)
        weights.append(count)
    total = sum(weights)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [{"type": "sampled", "name": name, "unit": "none", "startValue": 0, "endValue": total,
                      "samples": samples, "weights": weights}],
        "name": name,
        "exporter": "vllm-workbench",
    }


def _tree(stacks: Stacks) -> dict:
    root: dict = {"count": 0, "children": {}}
    for stack, count in stacks.items():
        node = root
        node["count"] += count
        for frame in stack:
            node = node["children"].setdefault(frame, {"count": 0, "children": {}})
            node["count"] += count
    return root


def to_flamegraph_svg(stacks: Stacks, title: str, width: int = 1200, row: int = 17) -> str:
    """Boxes as wide as their samples, children sorted by name (like flamegraph.pl), root at the bottom."""
    root = _tree(stacks)
    total = root["count"] or 1
    min_width = width * 0.001
    boxes: list[tuple[float, int, float, str, int]] = []  # x, depth, w, frame, count

    def walk(node: dict, x: float, depth: int) -> int:
        deepest = depth
        for name in sorted(node["children"]):
            child = node["children"][name]
            w = child["count"] / total * width
            if w >= min_width:
                boxes.append((x, depth, w, name, child["count"]))
                deepest = max(deepest, walk(child, x, depth + 1))
            x += w
        return deepest

    depth = walk(root, 0.0, 0) + 1
    height = (depth + 3) * row
    parts = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
        f'<text x="4" y="{row - 4}">{escape(title)}</text>',
    ]
    for x, level, w, name, count in boxes:
        y = height - (level + 1) * row
        hue = 20 + (sum(map(ord, name)) % 40)
        label = escape(name[: max(0, int(w / 7) - 1)]) if w > 21 else ""
        parts.append(
            f'<g><title>{escape(name)} ({count} samples, {count / total:.1%})</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" fill="hsl({hue},90%,60%)" rx="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + row - 5}">{label}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def record_profile(pid: int, seconds: float, out_dir: Path, native: bool = False, rate: int = 100,
                   timeout_extra: float = 15.0) -> ProfileResult:
    result = ProfileResult(pid, seconds)
    spy = py_spy_path()
    if spy is None:
        result.error = "py-spy is not installed (pip install py-spy)"
        return result
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        result.error = f"PID {pid} is gone"
        return result
    stem = f"profile-{pid}-{time.strftime('%Y%m%d-%H%M%S')}"
    raw = out_dir / f"{stem}.txt"
    cmd = [spy, "record", "--format", "raw", "--nonblocking", "-d", str(max(1, round(seconds))), "-r", str(rate),
           "-p", str(pid), "-o", str(raw)]
    if native:
        cmd.append("--native")
    try:
        was = state_letter(psutil.Process(pid))
    except psutil.Error:
        was = ""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_extra,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        result.error = f"py-spy record did not finish within {seconds + timeout_extra:.0f} s: abandoned"
        return result
    finally:
        _resume_if_we_stopped(pid, was)  # never a stop we found
    if not raw.exists():
        low = (done.stderr or "").lower()
        if "permission" in low or "ptrace" in low or "operation not permitted" in low:
            result.error = PTRACE_HELP
        else:
            result.error = (done.stderr or done.stdout or "py-spy wrote no samples").strip().splitlines()[-1]
        return result
    stacks = parse_collapsed(raw.read_text(errors="replace"))
    raw.chmod(0o600)
    result.samples = sum(stacks.values())
    title = f"PID {pid} {name}: {seconds:.0f} s, {result.samples} samples"
    svg = write_private(out_dir / f"{stem}.svg", to_flamegraph_svg(stacks, title))
    scope = write_private(out_dir / f"{stem}.speedscope.json", json.dumps(to_speedscope(stacks, title)))
    result.paths = {"svg": str(svg), "speedscope": str(scope), "raw": str(raw)}
    result.top = [f"{share:5.1%}  {frame}" for frame, _, share in hottest(stacks)]
    return result  # zero samples is an answer too: the process was idle (py-spy skips idle threads)


__all__ = ["ProfileResult", "record_profile", "parse_collapsed", "to_speedscope", "to_flamegraph_svg", "hottest"]
