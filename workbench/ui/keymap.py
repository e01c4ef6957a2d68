"""Key bindings from data: the shipped keymap plus the user's overrides, by binding id."""

from __future__ import annotations

import os
from pathlib import Path

from textual.binding import Binding

from workbench.core.tomlfile import DataFileError, load_toml, locate

SHIPPED = Path(__file__).resolve().parent.parent / "keymap.toml"
_KEYS = {"key": str, "action": str, "description": str, "tooltip": str, "show": bool}


def user_keymap() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vllm-workbench" / "keymap.toml"


def _read(path: Path) -> dict[str, dict]:
    data, text = load_toml(path)
    table = data.get("bindings", {})
    if not isinstance(table, dict):
        raise DataFileError(str(path), "bindings must be a table of [bindings.ID]", locate(text, "bindings"), "bindings")
    unknown = set(data) - {"bindings"}
    if unknown:
        key = sorted(unknown)[0]
        raise DataFileError(str(path), f"unknown top-level key {key!r} (expected [bindings.ID])", locate(text, key), key)
    for binding_id, spec in table.items():
        if not isinstance(spec, dict):
            raise DataFileError(str(path), f"bindings.{binding_id} must be a table", locate(text, binding_id), binding_id)
        for key, value in spec.items():
            if key not in _KEYS:
                raise DataFileError(str(path), f"bindings.{binding_id}: unknown field {key!r}", locate(text, key), key)
            if not isinstance(value, _KEYS[key]):
                raise DataFileError(str(path), f"bindings.{binding_id}.{key} must be a {_KEYS[key].__name__}",
                                    locate(text, key), key)
    return table


def load_bindings(user: Path | None = None) -> list[Binding]:
    table = _read(SHIPPED)
    user = user or user_keymap()
    if user.exists():
        for binding_id, spec in _read(user).items():
            if binding_id not in table:
                raise DataFileError(str(user), f"no binding with id {binding_id!r}",
                                    locate(user.read_text(encoding="utf-8"), binding_id), binding_id)
            table[binding_id] = {**table[binding_id], **spec}
    return [
        Binding(spec["key"], spec["action"], spec.get("description", ""), show=spec.get("show", True),
                tooltip=spec.get("tooltip", ""), id=binding_id)
        for binding_id, spec in table.items()
    ]
