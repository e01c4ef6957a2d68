"""The debug variables a face offers as toggles: data from `debug_vars.toml` plus the user's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench.core.tomlfile import DataFileError, load_toml, locate

SHIPPED = Path(__file__).resolve().parents[2] / "debug_vars.toml"
_FIELDS = {"values": list, "why": str, "guard": str}


@dataclass(frozen=True)
class DebugVar:
    name: str
    values: tuple[str, ...]
    why: str = ""
    guard: str = ""

    def next_value(self, current: str | None) -> str | None:
        """Off → first value → … → last value → off."""
        if current is None or current not in self.values:
            return self.values[0] if current is None else None
        index = self.values.index(current) + 1
        return self.values[index] if index < len(self.values) else None


def user_debug_vars() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vllm-workbench" / "debug_vars.toml"


def _read(path: Path) -> list[DebugVar]:
    data, text = load_toml(path)
    unknown = set(data) - {"vars"}
    if unknown:
        key = sorted(unknown)[0]
        raise DataFileError(str(path), f"unknown top-level key {key!r} (expected [vars.NAME])", locate(text, key), key)
    result = []
    table = data.get("vars", {})
    if not isinstance(table, dict):
        raise DataFileError(str(path), "vars must be a table of [vars.NAME]", locate(text, "vars"), "vars")
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise DataFileError(str(path), f"vars.{name} must be a table", locate(text, name), name)
        for key, value in spec.items():
            if key not in _FIELDS:
                raise DataFileError(str(path), f"vars.{name}: unknown field {key!r} (known: values, why, guard)",
                                    locate(text, key), key)
            if not isinstance(value, _FIELDS[key]):
                raise DataFileError(str(path), f"vars.{name}.{key} must be a {_FIELDS[key].__name__}",
                                    locate(text, key), key)
        values = spec.get("values")
        if not values or not all(isinstance(v, str) and v for v in values):
            raise DataFileError(str(path), f"vars.{name}.values must be a non-empty list of strings",
                                locate(text, "values") or locate(text, name), "values")
        result.append(DebugVar(name, tuple(values), spec.get("why", ""), spec.get("guard", "")))
    return result


def load_debug_vars(user: Path | None = None) -> list[DebugVar]:
    """Shipped variables, then the user's (a user entry with a shipped name replaces it)."""
    merged = {v.name: v for v in _read(SHIPPED)}
    user = user or user_debug_vars()
    if user.exists():
        merged.update({v.name: v for v in _read(user)})
    return list(merged.values())


def env_diff(previous: dict[str, str | None], pending: dict[str, str | None]) -> list[str]:
    """What the next relaunch changes vs the previous run: `+NAME=V`, `-NAME`, `~NAME=V`."""
    out = []
    for name in sorted(set(previous) | set(pending)):
        old, new = previous.get(name), pending.get(name)
        if old == new:
            continue
        if new is None:
            out.append(f"-{name}")
        elif old is None:
            out.append(f"+{name}={new}")
        else:
            out.append(f"~{name}={new}")
    return out
