"""Promise 5: bad files. A malformed recipe, signature file, layout, keymap or debug-variable
config gives a clear message (file, line, key), a non-zero exit and launches nothing — never a
traceback. A recipe runs only the command it declares, through a shell only if it says so."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import REPO
from workbench.core.knowledge.signatures import load_file
from workbench.core.knowledge.stackrules import parse_rules
from workbench.core.record.debugvars import load_debug_vars
from workbench.core.record.recipe import load_recipe
from workbench.core.tomlfile import DataFileError, tomllib
from workbench.ui.keymap import load_bindings
from workbench.ui.layouts import load_layout

LOADERS: dict[str, tuple[Callable[[Path], Any], Path]] = {
    "recipe": (load_recipe, REPO / "recipes" / "comm-check.toml"),
    "signatures": (load_file, REPO / "workbench" / "signatures" / "engine.toml"),
    "layout": (lambda p: load_layout(str(p)), REPO / "layouts" / "grid.toml"),
    "keymap": (lambda p: load_bindings(user=p), REPO / "workbench" / "keymap.toml"),
    "debug_vars": (lambda p: load_debug_vars(user=p), REPO / "workbench" / "debug_vars.toml"),
    "stacks": (parse_rules, REPO / "workbench" / "data" / "stacks.toml"),
}
SAMPLES = {name: tomllib.loads(path.read_text()) for name, (_l, path) in LOADERS.items()}


def inline(value: Any) -> str:
    """A TOML value as one inline literal (tables as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {inline(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def dump(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k)} = {inline(v)}\n" for k, v in data.items())


def check(load: Callable[[Path], Any], path: Path) -> DataFileError | None:
    """Load; the only acceptable failure is a located DataFileError naming the file."""
    try:
        load(path)
    except DataFileError as exc:
        text = str(exc)
        assert text.startswith(str(path)), text
        assert exc.message and "Traceback" not in text
        return exc
    return None


WRONG_VALUES = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(max_size=10),
                         st.lists(st.integers(), max_size=3), st.just({}), st.just({"x": 1}), st.just([{"y": "z"}]))


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _paths(v, (*prefix, i))
    return out


def mutate(data: Any, path: tuple, how: str, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(data) if isinstance(data, dict) else list(data)
    if not rest and how == "delete":
        del copy[head]
    elif not rest and how == "unknown" and isinstance(copy, dict):
        copy["no_such_key_" + str(head)] = new
    else:
        copy[head] = mutate(copy[head], rest, how, new)
    return copy


@pytest.mark.parametrize("kind", sorted(LOADERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), how=st.sampled_from(["replace", "delete", "unknown"]), new=WRONG_VALUES)
def test_fuzz_structurally_valid_toml_with_wrong_types_and_unknown_keys(kind: str, seed: int, how: str, new: Any,
                                                                         tmp_path: Path) -> None:
    load, _shipped = LOADERS[kind]
    paths = _paths(SAMPLES[kind])
    path = random.Random(seed).choice(paths)
    data = mutate(SAMPLES[kind], path, how, new)
    target = tmp_path / f"{kind}.toml"
    target.write_text(dump(data) if isinstance(data, dict) else inline(data))
    error = check(load, target)
    if error is not None and error.key and how == "unknown" and isinstance(path[-1], str):
        assert error.line is not None, str(error)


@pytest.mark.parametrize("kind", sorted(LOADERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.one_of(st.binary(max_size=300),
                      st.lists(st.sampled_from([b"[", b"]", b"[[", b"]]", b"=", b'"', b"'", b"{", b"}", b",", b"\n",
                                                b"command", b"name", b"bindings", b"x", b"1", b"true", b"\xff", b"\x00",
                                                b"#", b".", b" "]), max_size=60).map(b"".join)))
def test_fuzz_random_toml_ish_bytes(kind: str, blob: bytes, tmp_path: Path) -> None:
    load, _shipped = LOADERS[kind]
    target = tmp_path / f"{kind}.toml"
    target.write_bytes(blob)
    error = check(load, target)
    if error is not None and error.message.startswith("invalid TOML"):
        assert error.line is not None or not blob.strip(), str(error)


def test_shipped_files_load() -> None:
    for kind, (load, path) in LOADERS.items():
        assert check(load, path) is None, kind


# -- the real CLI: message, exit code, nothing launched --------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


BAD_RECIPE = 'name = "x"\ncommand = ["touch", "{sentinel}"]\ntimeouts = 3\n'


@pytest.mark.parametrize("case", ["recipe", "layout", "signatures", "keymap", "debug_vars"])
def test_cli_refuses_a_bad_file_before_launching(case: str, tmp_path: Path, no_leaks) -> None:
    sentinel = tmp_path / "launched"
    touch = ["--", "touch", str(sentinel)]
    bad = tmp_path / "bad.toml"
    config = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(config)}
    if case == "recipe":
        bad.write_text(BAD_RECIPE.format(sentinel=sentinel) + "shell = 'yes'\n")
        out = _cli("replay", str(bad), "--headless", env=env)
    elif case == "layout":
        bad.write_text('name = "bad"\npanes = "two"\n')
        out = _cli("--layout", str(bad), *touch, env=env)
    elif case == "signatures":
        sigs = tmp_path / "sigs"
        sigs.mkdir()
        (sigs / "bad.toml").write_text('[[signature]]\nid = "x"\nseverity = 3\n')
        out = _cli("run", "--headless", "--signatures", str(sigs), *touch, env=env)
    else:
        (config / "vllm-workbench").mkdir(parents=True)
        name = "keymap.toml" if case == "keymap" else "debug_vars.toml"
        (config / "vllm-workbench" / name).write_text("[bindings.quit]\nkey = 5\n" if case == "keymap" else "[[var]]\nname = 1\n")
        out = _cli(*touch, env=env)
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert "error" in out.stderr and ".toml:" in out.stderr, out.stderr  # file:line: [key] message
    assert not sentinel.exists(), "the command was launched anyway"


def test_a_recipe_passes_shell_metacharacters_literally(tmp_path: Path, no_leaks) -> None:
    """Without `shell = true` the declared argv is exec'd as is: `;`, `$(...)`, `|` and `>` are
    plain characters of an argument."""
    pwned = tmp_path / "pwned"
    recipe = tmp_path / "r.toml"
    words = [f"; touch {pwned}", f"$(touch {pwned})", f"| touch {pwned}", f"> {pwned}", f"`touch {pwned}`"]
    recipe.write_text(f'name = "literal"\ncommand = {inline(["{python}", "-c", "import sys; print(sys.argv[1:])", *words])}\n')
    loaded = load_recipe(recipe)
    assert loaded.shell is False
    argv, _env, _cwd = loaded.resolve(port=1)
    assert argv[-len(words):] == words
    out = _cli("replay", str(recipe), "--headless")
    assert not pwned.exists(), "a shell ran"
    assert "touch" in out.stdout  # the child printed its arguments: they arrived as words
