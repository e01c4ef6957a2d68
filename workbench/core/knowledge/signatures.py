"""The knowledge base: signature and phase-marker files, loaded and validated strictly.

Signatures are data (`workbench/signatures/*.toml`, the user's config dir, `--signatures DIR`).
A malformed file is rejected with its path, line, entry and field.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.knowledge.phases import PHASE_ORDER, PHASES
from workbench.core.tomlfile import DataFileError, load_toml, locate

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "signatures"
SEVERITIES = ("error", "warning", "info")
PLATFORMS = ("any", "cuda", "ascend", "cpu", "rocm")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


@dataclass(frozen=True)
class Action:
    text: str
    arg_delta: dict[str, str | bool] = field(default_factory=dict)
    env_delta: dict[str, str | bool] = field(default_factory=dict)
    first_in: tuple[str, ...] = ()  # phases where this is the fix to try first
    last_in: tuple[str, ...] = ()  # phases where it does not help (offered last)

    @property
    def applicable(self) -> bool:
        return bool(self.arg_delta or self.env_delta)

    def fill(self, captures: dict[str, str]) -> Action:
        """Fill `{name}` placeholders from a pattern's named groups."""
        if not captures:
            return self

        def sub(value: Any) -> Any:
            if isinstance(value, str):
                return _PLACEHOLDER.sub(lambda m: captures.get(m.group(1), m.group(0)), value)
            return value

        return Action(
            sub(self.text),
            {k: sub(v) for k, v in self.arg_delta.items()},
            {k: sub(v) for k, v in self.env_delta.items()},
            self.first_in,
            self.last_in,
        )

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"text": self.text}
        if self.arg_delta:
            out["arg_delta"] = dict(self.arg_delta)
        if self.env_delta:
            out["env_delta"] = dict(self.env_delta)
        return out


@dataclass(frozen=True)
class Signature:
    id: str
    title: str
    severity: str
    phase: str
    patterns: tuple[str, ...]
    why: str
    actions: tuple[Action, ...] = ()
    cascade: bool = False
    benign: bool = False
    benign_during: tuple[str, ...] = ()
    progress: bool = True
    stops: bool = False  # the line says the server was told to stop: what follows is shutdown
    platform: str = "any"
    sources: tuple[str, ...] = ()
    origin: str = ""  # the file it came from

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "phase": self.phase,
            "patterns": list(self.patterns),
            "why": self.why,
            "cascade": self.cascade,
            "benign": self.benign,
            "benign_during": list(self.benign_during),
            "stops": self.stops,
            "platform": self.platform,
            "sources": list(self.sources),
            "actions": [a.to_dict() for a in self.actions],
            "origin": self.origin,
        }


@dataclass(frozen=True)
class PhaseMarker:
    phase: str
    patterns: tuple[str, ...]


@dataclass
class KnowledgeBase:
    signatures: list[Signature]
    phase_markers: list[PhaseMarker]
    files: list[str]

    def by_id(self) -> dict[str, Signature]:
        return {s.id: s for s in self.signatures}


# -- validation ----------------------------------------------------------------------------

_SIGNATURE_KEYS = {
    "id": str, "title": str, "severity": str, "phase": str, "patterns": list, "why": str,
    "actions": list, "cascade": bool, "benign": bool, "benign_during": list, "progress": bool,
    "stops": bool, "platform": str, "sources": list,
}
_REQUIRED = ("id", "title", "severity", "patterns", "why")
_ACTION_KEYS = {"text": str, "arg_delta": dict, "env_delta": dict, "first_in": list, "last_in": list}


class _FileCheck:
    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def fail(self, message: str, key: str, array: str | None = None, index: int = 0) -> DataFileError:
        return DataFileError(str(self.path), message, locate(self.text, key, array, index), key)


def _check_type(check: _FileCheck, table: dict, spec: dict, where: str, array: str, index: int) -> None:
    for key, value in table.items():
        if key not in spec:
            known = ", ".join(sorted(spec))
            raise check.fail(f"{where}: unknown field {key!r} (known: {known})", key, array, index)
        expected = spec[key]
        if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
            raise check.fail(
                f"{where}: field {key!r} must be a {expected.__name__}, not {type(value).__name__}",
                key, array, index,
            )


def _check_pattern(check: _FileCheck, pattern: Any, where: str, array: str, index: int) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise check.fail(f"{where}: every pattern must be a non-empty string", "patterns", array, index)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise check.fail(f"{where}: pattern {pattern!r} is not a valid regex: {exc}", "patterns", array, index) from None
    if compiled.search("") is not None:
        raise check.fail(f"{where}: pattern {pattern!r} matches an empty line", "patterns", array, index)
    return pattern


def _parse_delta(check: _FileCheck, value: dict, where: str, key: str, index: int) -> dict[str, str | bool]:
    out: dict[str, str | bool] = {}
    for name, v in value.items():
        if not isinstance(v, (str, bool)):
            raise check.fail(f"{where}: {key}[{name!r}] must be a string or true/false", key, "signature", index)
        if key == "arg_delta" and not name.startswith("-"):
            raise check.fail(f"{where}: {key} names flags like '--max-model-len', got {name!r}", key, "signature", index)
        out[name] = v
    return out


def _parse_signature(check: _FileCheck, raw: Any, index: int) -> Signature:
    if not isinstance(raw, dict):
        raise check.fail(f"signature #{index + 1} must be a table", "signature")
    where = f"signature #{index + 1}" + (f" ({raw['id']})" if isinstance(raw.get("id"), str) else "")
    _check_type(check, raw, _SIGNATURE_KEYS, where, "signature", index)
    for key in _REQUIRED:
        if key not in raw:
            raise check.fail(f"{where}: missing required field {key!r}", key, "signature", index)
    if not _ID.match(raw["id"]):
        raise check.fail(f"{where}: id must match [a-z][a-z0-9_]*", "id", "signature", index)
    if raw["severity"] not in SEVERITIES:
        raise check.fail(f"{where}: severity must be one of {', '.join(SEVERITIES)}", "severity", "signature", index)
    phase = raw.get("phase", "any")
    if phase != "any" and phase not in PHASE_ORDER:
        raise check.fail(f"{where}: phase must be 'any' or one of {', '.join(PHASES)}", "phase", "signature", index)
    for p in raw.get("benign_during", []):
        if p not in PHASE_ORDER:
            raise check.fail(f"{where}: benign_during names unknown phase {p!r}", "benign_during", "signature", index)
    platform = raw.get("platform", "any")
    if platform not in PLATFORMS:
        raise check.fail(f"{where}: platform must be one of {', '.join(PLATFORMS)}", "platform", "signature", index)
    if not raw["patterns"]:
        raise check.fail(f"{where}: patterns must not be empty", "patterns", "signature", index)
    patterns = tuple(_check_pattern(check, p, where, "signature", index) for p in raw["patterns"])
    actions = []
    for j, a in enumerate(raw.get("actions", [])):
        if not isinstance(a, dict):
            raise check.fail(f"{where}: action #{j + 1} must be a table", "actions", "signature", index)
        _check_type(check, a, _ACTION_KEYS, f"{where} action #{j + 1}", "signature", index)
        if "text" not in a:
            raise check.fail(f"{where} action #{j + 1}: missing required field 'text'", "text", "signature", index)
        for key in ("first_in", "last_in"):
            for p in a.get(key, []):
                if p not in PHASE_ORDER:
                    raise check.fail(f"{where} action #{j + 1}: {key} names unknown phase {p!r}", key, "signature", index)
        actions.append(
            Action(
                a["text"],
                _parse_delta(check, a.get("arg_delta", {}), where, "arg_delta", index),
                _parse_delta(check, a.get("env_delta", {}), where, "env_delta", index),
                tuple(a.get("first_in", [])),
                tuple(a.get("last_in", [])),
            )
        )
    for key in ("sources",):
        if not all(isinstance(s, str) for s in raw.get(key, [])):
            raise check.fail(f"{where}: {key} must be a list of strings", key, "signature", index)
    return Signature(
        id=raw["id"],
        title=raw["title"],
        severity=raw["severity"],
        phase=phase,
        patterns=patterns,
        why=raw["why"],
        actions=tuple(actions),
        cascade=raw.get("cascade", False),
        benign=raw.get("benign", False),
        benign_during=tuple(raw.get("benign_during", [])),
        progress=raw.get("progress", True),
        stops=raw.get("stops", False),
        platform=platform,
        sources=tuple(raw.get("sources", [])),
        origin=str(check.path),
    )


def _parse_phase(check: _FileCheck, raw: Any, index: int) -> PhaseMarker:
    where = f"phase #{index + 1}"
    if not isinstance(raw, dict):
        raise check.fail(f"{where} must be a table", "phase")
    _check_type(check, raw, {"name": str, "patterns": list}, where, "phase", index)
    for key in ("name", "patterns"):
        if key not in raw:
            raise check.fail(f"{where}: missing required field {key!r}", key, "phase", index)
    if raw["name"] not in PHASE_ORDER or raw["name"] == "starting":
        raise check.fail(f"{where}: name must be one of {', '.join(PHASES[1:])}", "name", "phase", index)
    return PhaseMarker(raw["name"], tuple(_check_pattern(check, p, where, "phase", index) for p in raw["patterns"]))


def load_file(path: Path) -> tuple[list[Signature], list[PhaseMarker]]:
    data, text = load_toml(path)
    check = _FileCheck(path, text)
    unknown = set(data) - {"schema", "signature", "phase"}
    if unknown:
        key = sorted(unknown)[0]
        raise check.fail(f"unknown top-level key {key!r} (expected schema, [[signature]], [[phase]])", key)
    if data.get("schema", 1) != 1:
        raise check.fail("unsupported schema version (this workbench reads schema = 1)", "schema")
    for key in ("signature", "phase"):
        if key in data and not isinstance(data[key], list):
            raise check.fail(f"{key!r} must be an array of tables ([[{key}]])", key)
    sigs = [_parse_signature(check, raw, i) for i, raw in enumerate(data.get("signature", []))]
    seen: set[str] = set()
    for i, sig in enumerate(sigs):
        if sig.id in seen:
            raise check.fail(f"signature #{i + 1}: duplicate signature id {sig.id!r}", "id", "signature", i)
        seen.add(sig.id)
    phases = [_parse_phase(check, raw, i) for i, raw in enumerate(data.get("phase", []))]
    return sigs, phases


def user_signature_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vllm-workbench" / "signatures"


def load_knowledge_base(extra_dirs: list[Path] | None = None, include_user: bool = True,
                        include_builtin: bool = True) -> KnowledgeBase:
    """Built-in files, then the user's config dir, then `extra_dirs`; a later id overrides."""
    dirs = [BUILTIN_DIR] if include_builtin else []
    if include_user:
        dirs.append(user_signature_dir())
    dirs.extend(extra_dirs or [])
    by_id: dict[str, Signature] = {}
    markers: list[PhaseMarker] = []
    files: list[str] = []
    for directory in dirs:
        directory = Path(directory)
        if directory.is_file():
            paths = [directory]
        elif directory.is_dir():
            paths = sorted(directory.glob("*.toml"))
        elif directory == BUILTIN_DIR or directory == user_signature_dir():
            continue
        else:
            raise DataFileError(str(directory), "signature directory not found")
        for path in paths:
            sigs, phases = load_file(path)  # ids are unique within a file
            for sig in sigs:
                by_id[sig.id] = sig
            markers.extend(phases)
            files.append(str(path))
    return KnowledgeBase(list(by_id.values()), markers, files)
