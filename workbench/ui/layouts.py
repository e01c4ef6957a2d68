"""Pane arrangements as data: `layouts/*.toml` in the project, then the user's layouts dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench.core.tomlfile import DataFileError, load_toml, locate

PANELS = ("phases", "findings", "debug", "notes", "stacks", "tree", "metrics")
ARRANGEMENTS = ("sidebar", "grid", "stacked")  # stacked: panels in a strip under a full-width log
SHIPPED_DIR = Path(__file__).resolve().parent.parent.parent / "layouts"
_FIELDS: dict[str, type] = {"description": str, "panes": int, "arrangement": str, "panels": list}


@dataclass(frozen=True)
class Layout:
    name: str
    panes: int
    arrangement: str
    panels: tuple[str, ...]
    description: str = ""


def user_layouts_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vllm-workbench" / "layouts"


def read_layout(path: Path) -> Layout:
    data, text = load_toml(path)
    for key, value in data.items():
        if key not in _FIELDS:
            raise DataFileError(str(path), f"unknown key {key!r} (known: {', '.join(_FIELDS)})", locate(text, key), key)
        if not isinstance(value, _FIELDS[key]) or isinstance(value, bool):
            raise DataFileError(str(path), f"{key} must be a {_FIELDS[key].__name__}", locate(text, key), key)
    panes = data.get("panes", 1)
    if not 1 <= panes <= 4:
        raise DataFileError(str(path), "panes must be between 1 and 4", locate(text, "panes"), "panes")
    arrangement = data.get("arrangement", "sidebar")
    if arrangement not in ARRANGEMENTS:
        raise DataFileError(str(path), f"arrangement must be one of {', '.join(ARRANGEMENTS)}",
                            locate(text, "arrangement"), "arrangement")
    panels = data.get("panels", [])
    for panel in panels:
        if panel not in PANELS:
            raise DataFileError(str(path), f"unknown panel {panel!r} (known: {', '.join(PANELS)})",
                                locate(text, "panels"), "panels")
    return Layout(path.stem, panes, arrangement, tuple(panels), data.get("description", ""))


def layout_dirs() -> list[Path]:
    return [d for d in (SHIPPED_DIR, user_layouts_dir()) if d.is_dir()]


def available_layouts() -> dict[str, Path]:
    """Layout name → file; a user's layout with a shipped name wins."""
    found: dict[str, Path] = {}
    for directory in layout_dirs():
        for path in sorted(directory.glob("*.toml")):
            found[path.stem] = path
    return found


def load_layout(name_or_path: str) -> Layout:
    """A layout by name, or by path to a .toml file; unknown names list the known ones."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return read_layout(Path(name_or_path))
    known = available_layouts()
    if name_or_path not in known:
        raise DataFileError("--layout", f"no layout {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'}")
    return read_layout(known[name_or_path])
