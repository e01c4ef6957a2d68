"""Recipes: an experiment written down (`recipes/*.toml`), strictly validated, and written back.

A recipe is what someone needs to replay a run elsewhere: the command, the environment delta
(and what to unset), the smoke requests, the timeouts, the outcome expected, and named variants
(deltas of args and env) for the isolation matrix. Secrets are never written: a secret the run
needed becomes a name in `requires_env`, filled from the replaying user's environment.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.cmdline import apply_arg_delta
from workbench.core.secrets import SECRET_FLAGS, is_secret_name
from workbench.core.tomlfile import DataFileError, load_toml, locate

_PLACEHOLDER = re.compile(r"\{(python|port|env:([A-Za-z_][A-Za-z0-9_]*))\}")
_TOP = {"name": str, "description": str, "command": list, "cwd": str, "shell": bool, "env": dict, "unset": list,
        "requires_env": list, "expect": str, "smoke": list, "timeouts": dict, "variants": dict, "load": dict}
# [load]: the same load on every healthy variant of a matrix (see core/probes/load.py)
_LOAD = {"concurrency": int, "requests": int, "duration": (int, float), "prompt_tokens": int, "max_tokens": int,
         "prefix_tokens": int, "seed": int, "endpoint": str}
_TIMEOUTS = {"startup": (int, float), "stall": (int, float)}
_SMOKE = {"endpoint": str, "body": dict, "expect_status": int, "expect_text": str, "name": str}
_VARIANT = {"description": str, "add_args": list, "remove_args": list, "set_args": dict, "env": dict, "unset": list}
REQUIRED = ("name", "command")


@dataclass
class SmokeRequest:
    endpoint: str = "/v1/chat/completions"
    body: dict[str, Any] = field(default_factory=dict)
    expect_status: int = 200
    expect_text: str = ""
    name: str = ""


@dataclass
class Variant:
    name: str
    description: str = ""
    add_args: list[str] = field(default_factory=list)
    remove_args: list[str] = field(default_factory=list)
    set_args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)

    def changes(self) -> int:
        """How many things this variant changes at once (more than one: an A/B cannot say which)."""
        return len(self.add_args) + len(self.remove_args) + len(self.set_args) + len(self.env) + len(self.unset)

    def label(self) -> str:
        parts = [*self.add_args, *(f"{k} {v}" for k, v in self.set_args.items()),
                 *(f"{k}={v}" for k, v in self.env.items()), *(f"without {k}" for k in self.remove_args),
                 *(f"-{k}" for k in self.unset)]
        return " ".join(parts) or self.name


@dataclass
class Recipe:
    name: str
    command: list[str]
    description: str = ""
    cwd: str | None = None
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    requires_env: list[str] = field(default_factory=list)
    expect: str = "healthy"
    smoke: list[SmokeRequest] = field(default_factory=list)
    startup_timeout: float | None = None
    stall_window: float | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    load: dict[str, Any] | None = None  # LoadSpec fields
    path: str = ""

    def missing_env(self, environ: dict[str, str] | None = None) -> list[str]:
        environ = os.environ if environ is None else environ
        wanted = set(self.requires_env) | {m.group(2) for m in _PLACEHOLDER.finditer(" ".join(self.command)) if m.group(2)}
        return sorted(name for name in wanted if not environ.get(name))

    def resolve(self, variant: str | None = None, port: int | None = None, environ: dict[str, str] | None = None,
                python: str | None = None) -> tuple[list[str], dict[str, str | None], str | None]:
        """(argv, env delta with None meaning unset, cwd) for the base or one variant; `{python}` is
        `python` if given (the vLLM environment's interpreter), else the workbench's own."""
        environ = os.environ if environ is None else environ

        def fill(word: str) -> str:
            def one(match: re.Match[str]) -> str:
                if match.group(1) == "python":
                    return python or sys.executable
                if match.group(1) == "port":
                    if port is None:
                        raise ValueError("this recipe has a {port} placeholder: give a port")
                    return str(port)
                return environ.get(match.group(2) or "", "")
            return _PLACEHOLDER.sub(one, word)

        argv = [fill(word) for word in self.command]
        env: dict[str, str | None] = {k: fill(v) for k, v in self.env.items()}
        env.update({name: None for name in self.unset})
        for name in self.requires_env:
            if environ.get(name):
                env[name] = environ[name]
        if variant is not None:
            v = self.variants[variant]
            for flag in v.remove_args:
                argv = apply_arg_delta(argv, {flag: False})
            argv = apply_arg_delta(argv, {k: fill(str(val)) for k, val in v.set_args.items()})
            argv += [fill(word) for word in v.add_args if word not in argv]
            env.update({k: fill(val) for k, val in v.env.items()})
            env.update({name: None for name in v.unset})
        if self.shell:
            argv = ["/bin/sh", "-c", " ".join(argv)]
        return argv, env, self.cwd


# -- reading -----------------------------------------------------------------------------------


def _check_table(path: str, text: str, table: dict, schema: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in schema:
            known = ", ".join(schema)
            raise DataFileError(path, f"{where}unknown key {key!r} (known: {known})", locate(text, key), key)
        expected = schema[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected in (int, float, (int, float))):
            name = expected.__name__ if isinstance(expected, type) else "number"
            raise DataFileError(path, f"{where}{key} must be a {name}", locate(text, key), key)


def _strings(path: str, text: str, value: list, key: str, where: str = "") -> list[str]:
    if not all(isinstance(v, str) for v in value):
        raise DataFileError(path, f"{where}{key} must be a list of strings", locate(text, key), key)
    return list(value)


def _str_map(path: str, text: str, value: dict, key: str, where: str = "") -> dict[str, str]:
    for name, val in value.items():
        if not isinstance(val, str):
            raise DataFileError(path, f"{where}{key}.{name} must be a string (quote numbers: \"1\")",
                                locate(text, name), name)
    return dict(value)


def parse_recipe(data: dict[str, Any], text: str, path: str) -> Recipe:
    _check_table(path, text, data, _TOP, "")
    for key in REQUIRED:
        if key not in data:
            raise DataFileError(path, f"missing required key {key!r}", None, key)
    command = _strings(path, text, data["command"], "command")
    if not command:
        raise DataFileError(path, "command must not be empty", locate(text, "command"), "command")
    timeouts = data.get("timeouts", {})
    _check_table(path, text, timeouts, _TIMEOUTS, "timeouts: ")
    smokes = []
    for index, smoke in enumerate(data.get("smoke", [])):
        if not isinstance(smoke, dict):
            raise DataFileError(path, "smoke must be an array of tables ([[smoke]])", locate(text, "smoke"), "smoke")
        _check_table(path, text, smoke, _SMOKE, f"smoke[{index}]: ")
        smokes.append(SmokeRequest(**smoke))
    variants = {}
    for name, spec in data.get("variants", {}).items():
        if not isinstance(spec, dict):
            raise DataFileError(path, f"variants.{name} must be a table", locate(text, name), name)
        where = f"variants.{name}: "
        _check_table(path, text, spec, _VARIANT, where)
        variants[name] = Variant(
            name, spec.get("description", ""),
            _strings(path, text, spec.get("add_args", []), "add_args", where),
            _strings(path, text, spec.get("remove_args", []), "remove_args", where),
            {k: str(v) for k, v in _str_map(path, text, spec.get("set_args", {}), "set_args", where).items()},
            _str_map(path, text, spec.get("env", {}), "env", where),
            _strings(path, text, spec.get("unset", []), "unset", where),
        )
    load = _load_table(path, text, data["load"]) if "load" in data else None
    env = _str_map(path, text, data.get("env", {}), "env")
    for name in env:
        if is_secret_name(name):
            raise DataFileError(path, f"env.{name} looks like a secret: list it in requires_env instead of "
                                      "writing its value", locate(text, name), name)
    return Recipe(
        name=data["name"], command=command, description=data.get("description", ""), cwd=data.get("cwd"),
        shell=data.get("shell", False), env=env, unset=_strings(path, text, data.get("unset", []), "unset"),
        requires_env=_strings(path, text, data.get("requires_env", []), "requires_env"),
        expect=data.get("expect", "healthy"), smoke=smokes, startup_timeout=timeouts.get("startup"),
        stall_window=timeouts.get("stall"), variants=variants, load=load, path=path,
    )


def _load_table(path: str, text: str, table: Any) -> dict[str, Any]:
    from workbench.core.probes.load import LoadSpec

    if not isinstance(table, dict):
        raise DataFileError(path, "load must be a table ([load])", locate(text, "load"), "load")
    _check_table(path, text, table, _LOAD, "load: ")
    spec = dict(table)
    if "duration" in spec:
        spec.setdefault("requests", None)
    try:
        LoadSpec(**spec).check()
    except ValueError as exc:
        raise DataFileError(path, f"load: {exc}", locate(text, "load"), "load") from None
    return spec


def load_recipe(path: str | Path) -> Recipe:
    data, text = load_toml(path)
    return parse_recipe(data, text, str(path))


# -- writing -----------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def recipe_from_run(name: str, argv: list[str], env_delta: dict[str, str | None], cwd: str | None = None,
                    description: str = "", expect: str = "healthy") -> Recipe:
    """A recipe for a command as it was run; secret values become `requires_env` names."""
    argv = list(argv)
    requires: list[str] = []
    for i, word in enumerate(argv):
        for flag in SECRET_FLAGS:
            if word == flag and i + 1 < len(argv):
                argv[i + 1] = "{env:VLLM_API_KEY}" if flag == "--api-key" else "{env:HF_TOKEN}"
            elif word.startswith(flag + "="):
                argv[i] = f"{flag}={{env:{'VLLM_API_KEY' if flag == '--api-key' else 'HF_TOKEN'}}}"
    for word in argv:
        requires += [m.group(2) for m in _PLACEHOLDER.finditer(word) if m.group(2)]
    env = {}
    unset = []
    for key, value in env_delta.items():
        if is_secret_name(key):
            requires.append(key)
        elif value is None:
            unset.append(key)
        else:
            env[key] = value
    return Recipe(name=name, command=argv, description=description, cwd=cwd, env=env, unset=unset,
                  requires_env=sorted(set(requires)), expect=expect)


def recipe_toml(recipe: Recipe) -> str:
    lines = [f"name = {_toml_value(recipe.name)}"]
    if recipe.description:
        lines.append(f"description = {_toml_value(recipe.description)}")
    lines.append(f"command = {_toml_value(recipe.command)}")
    if recipe.cwd:
        lines.append(f"cwd = {_toml_value(recipe.cwd)}")
    if recipe.shell:
        lines.append("shell = true")
    lines.append(f"expect = {_toml_value(recipe.expect)}")
    if recipe.unset:
        lines.append(f"unset = {_toml_value(recipe.unset)}")
    if recipe.requires_env:
        lines.append(f"requires_env = {_toml_value(recipe.requires_env)}  # secrets: set them, they are never written")
    if recipe.env:
        lines += ["", "[env]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in recipe.env.items()]
    timeouts = {k: v for k, v in (("startup", recipe.startup_timeout), ("stall", recipe.stall_window)) if v is not None}
    if timeouts:
        lines += ["", "[timeouts]"] + [f"{k} = {_toml_value(v)}" for k, v in timeouts.items()]
    for smoke in recipe.smoke:
        lines += ["", "[[smoke]]", f"endpoint = {_toml_value(smoke.endpoint)}"]
        if smoke.name:
            lines.append(f"name = {_toml_value(smoke.name)}")
        if smoke.body:
            lines.append(f"body = {_toml_value(smoke.body)}")
        lines.append(f"expect_status = {smoke.expect_status}")
        if smoke.expect_text:
            lines.append(f"expect_text = {_toml_value(smoke.expect_text)}")
    if recipe.load:
        lines += ["", "[load]"] + [f"{k} = {_toml_value(v)}" for k, v in recipe.load.items() if v is not None]
    for variant in recipe.variants.values():
        lines += ["", f"[variants.{_toml_key(variant.name)}]"]
        for key in ("description", "add_args", "remove_args", "set_args", "env", "unset"):
            value = getattr(variant, key)
            if value:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
