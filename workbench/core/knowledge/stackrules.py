"""The rules for reading a stack dump (`workbench/data/stacks.toml`): idle frames, roles, classes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from workbench.core.tomlfile import DataFileError, load_toml, locate

BUILTIN_RULES = Path(__file__).resolve().parent.parent.parent / "data" / "stacks.toml"


@dataclass(frozen=True)
class FrameRule:
    function: re.Pattern[str] | None
    file: re.Pattern[str] | None

    def matches(self, name: str, filename: str) -> bool:
        if self.function is not None and not (self.function.search(name)
                                              or self.function.search(name.rsplit(".", 1)[-1])):
            return False
        return self.file is None or bool(self.file.search(filename))


@dataclass(frozen=True)
class StackClass:
    id: str
    title: str
    stuck: bool  # False: a normal place to wait (the serving loop with nothing to do)
    rules: tuple[FrameRule, ...]
    innermost: bool = False  # only where nothing but waiting is inside (the serving loop itself)
    fallback: bool = False  # only when no other class matches the frames that do work (plain file reads)

    def matches(self, name: str, filename: str) -> bool:
        return any(rule.matches(name, filename) for rule in self.rules)


@dataclass(frozen=True)
class RoleRule:
    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class StackRules:
    idle: tuple[FrameRule, ...]
    roles: tuple[RoleRule, ...]
    classes: tuple[StackClass, ...]
    compiler: re.Pattern[str] | None = None  # the name of a compiler subprocess (not Python: no stack)

    def is_idle_frame(self, name: str, filename: str) -> bool:
        return any(rule.matches(name, filename) for rule in self.idle)

    def role_of(self, name: str, cmdline: str) -> tuple[RoleRule, re.Match[str]] | None:
        for role in self.roles:  # the title in argv survives untruncated; the name is cut at 15 bytes
            found = role.pattern.search(cmdline) or role.pattern.search(name)
            if found:
                return role, found
        return None

    def classify(self, frames: list, idle: list[bool]) -> StackClass | None:
        """Innermost first: the frames that do work, then a plain read among them, then the idle ones."""
        first_work = next((i for i, waiting in enumerate(idle) if not waiting), len(frames))

        def match(i: int, fallback: bool) -> StackClass | None:
            for cls in self.classes:
                if (cls.innermost and i > first_work) or cls.fallback != fallback:
                    continue
                if cls.matches(frames[i].name, frames[i].filename):
                    return cls
            return None

        work = [i for i, waiting in enumerate(idle) if not waiting]
        rest = [i for i, waiting in enumerate(idle) if waiting]
        for indices, fallback in ((work, False), (work, True), (rest, False), (rest, True)):
            for i in indices:
                if (found := match(i, fallback)) is not None:
                    return found
        return None


def _pattern(path: Path, text: str, raw: object, key: str, array: str | None, index: int) -> re.Pattern[str]:
    line = locate(text, key, array, index)
    where = f"{array} #{index + 1}: " if array else ""
    if not isinstance(raw, str):
        raise DataFileError(str(path), f"{where}{key} must be a string", line, key)
    try:
        return re.compile(raw)
    except re.error as exc:
        raise DataFileError(str(path), f"{where}bad regular expression in {key}: {exc}", line, key) from None


def _frame_rule(path: Path, text: str, raw: object, array: str, index: int) -> FrameRule:
    if not isinstance(raw, dict) or not (set(raw) & {"function", "file"}) or set(raw) - {"function", "file"}:
        raise DataFileError(str(path), f"{array} #{index + 1}: a rule has `function` and/or `file` and nothing else",
                            locate(text, "rules", array, index) if array == "class" else locate(text, "file", array, index))
    function = _pattern(path, text, raw["function"], "function", array, index) if "function" in raw else None
    file = _pattern(path, text, raw["file"], "file", array, index) if "file" in raw else None
    return FrameRule(function, file)


def parse_rules(path: Path) -> StackRules:
    data, text = load_toml(path)
    unknown = set(data) - {"schema", "idle_frame", "role", "class", "compiler_process"}
    if unknown:
        key = sorted(unknown)[0]
        raise DataFileError(str(path), f"unknown top-level key {key!r} (expected [[idle_frame]], [[role]], [[class]])",
                            locate(text, key), key)
    for key in ("idle_frame", "role", "class"):
        if not isinstance(data.get(key, []), list):
            raise DataFileError(str(path), f"{key!r} must be an array of tables ([[{key}]])", locate(text, key), key)
    idle = tuple(_frame_rule(path, text, raw, "idle_frame", i) for i, raw in enumerate(data.get("idle_frame", [])))
    roles = []
    for i, raw in enumerate(data.get("role", [])):
        if not isinstance(raw, dict) or "name" not in raw or "pattern" not in raw:
            raise DataFileError(str(path), f"role #{i + 1}: needs name and pattern", locate(text, "name", "role", i), "name")
        roles.append(RoleRule(str(raw["name"]), _pattern(path, text, raw["pattern"], "pattern", "role", i)))
    classes = []
    for i, raw in enumerate(data.get("class", [])):
        if not isinstance(raw, dict) or not {"id", "title", "rules"} <= set(raw):
            raise DataFileError(str(path), f"class #{i + 1}: needs id, title and rules", locate(text, "id", "class", i), "id")
        if not isinstance(raw["rules"], list) or not raw["rules"]:
            raise DataFileError(str(path), f"class #{i + 1}: rules must be a non-empty array",
                                locate(text, "rules", "class", i), "rules")
        rules = tuple(_frame_rule(path, text, rule, "class", i) for rule in raw["rules"])
        classes.append(StackClass(str(raw["id"]), str(raw["title"]), bool(raw.get("stuck", True)), rules,
                                  bool(raw.get("innermost", False)), bool(raw.get("fallback", False))))
    compiler = _pattern(path, text, data["compiler_process"], "compiler_process", None, 0) if "compiler_process" in data else None
    return StackRules(idle, tuple(roles), tuple(classes), compiler)


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> StackRules:
    return parse_rules(Path(path) if path else BUILTIN_RULES)
