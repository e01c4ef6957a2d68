"""Recipes' [load] table: strict like the rest, and written back."""

from __future__ import annotations

import pytest

from workbench.core.record.recipe import load_recipe, parse_recipe, recipe_toml
from workbench.core.tomlfile import DataFileError

BASE = 'name = "t"\ncommand = ["vllm", "serve", "m"]\n'


def test_a_load_table_loads_and_round_trips(tmp_path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(BASE + "[load]\nconcurrency = 8\nrequests = 16\nprompt_tokens = 64\nmax_tokens = 8\n")
    recipe = load_recipe(path)
    assert recipe.load == {"concurrency": 8, "requests": 16, "prompt_tokens": 64, "max_tokens": 8}
    again = tmp_path / "again.toml"
    again.write_text(recipe_toml(recipe))
    assert load_recipe(again).load == recipe.load


@pytest.mark.parametrize(("table", "message"), [
    ("concurency = 8", "load: unknown key 'concurency'"),
    ('requests = "16"', "load: requests must be a int"),
    ("requests = 4\nduration = 10", "load: give requests or duration"),
    ("concurrency = 0", "load: concurrency must be at least 1"),
    ("prompt_tokens = 8\nprefix_tokens = 9", "prefix-tokens at most prompt-tokens"),
])
def test_a_bad_load_table_is_one_clear_line(tmp_path, table: str, message: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(BASE + "[load]\n" + table + "\n")
    with pytest.raises(DataFileError) as info:
        load_recipe(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_load_must_be_a_table() -> None:
    with pytest.raises(DataFileError, match="load must be a dict"):
        parse_recipe({"name": "t", "command": ["x"], "load": 3}, BASE + "load = 3\n", "r.toml")
