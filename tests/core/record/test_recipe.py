"""Recipes: strict validation with file, line and key; resolving variants; the record round trip."""

from __future__ import annotations

import sys

import pytest

from workbench.core.record.recipe import Recipe, Variant, load_recipe, recipe_from_run, recipe_toml
from workbench.core.tomlfile import DataFileError

GOOD = """\
name = "demo"
command = ["vllm", "serve", "m", "--port", "{port}", "--max-model-len", "32768"]
expect = "healthy"
unset = ["CUDA_LAUNCH_BLOCKING"]

[env]
VLLM_LOGGING_LEVEL = "DEBUG"

[timeouts]
startup = 300
stall = 60.5

[[smoke]]
endpoint = "/v1/completions"
body = { prompt = "hi", max_tokens = 4 }
expect_text = "hello"

[variants.eager]
add_args = ["--enforce-eager"]

[variants.short]
set_args = { "--max-model-len" = "8192" }
env = { TORCHDYNAMO_DISABLE = "1" }
"""


def write(tmp_path, text: str):
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


def test_a_good_recipe_loads_and_resolves(tmp_path) -> None:
    recipe = load_recipe(write(tmp_path, GOOD))
    assert recipe.startup_timeout == 300 and recipe.stall_window == 60.5
    assert recipe.smoke[0].body == {"prompt": "hi", "max_tokens": 4} and recipe.smoke[0].expect_status == 200
    argv, env, _ = recipe.resolve(None, port=8123, environ={})
    assert argv == ["vllm", "serve", "m", "--port", "8123", "--max-model-len", "32768"]
    assert env == {"VLLM_LOGGING_LEVEL": "DEBUG", "CUDA_LAUNCH_BLOCKING": None}
    argv, env, _ = recipe.resolve("short", port=1, environ={})
    assert argv[-2:] == ["--max-model-len", "8192"] and argv.count("--max-model-len") == 1
    assert env["TORCHDYNAMO_DISABLE"] == "1"
    assert recipe.resolve("eager", port=1, environ={})[0][-1] == "--enforce-eager"


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('name = "x"\ncommand = ["a"]\ncolour = "red"\n', 3, "colour"),
        ('name = "x"\ncommand = "vllm serve m"\n', 2, "command"),
        ('command = ["a"]\n', None, "name"),
        ('name = "x"\n', None, "command"),
        ('name = "x"\ncommand = []\n', 2, "command"),
        ('name = "x"\ncommand = ["a", 1]\n', 2, "command"),
        ('name = "x"\ncommand = ["a"]\n[env]\nTORCHDYNAMO_DISABLE = 1\n', 4, "TORCHDYNAMO_DISABLE"),
        ('name = "x"\ncommand = ["a"]\n[env]\nHF_TOKEN = "hf_abc"\n', 4, "HF_TOKEN"),
        ('name = "x"\ncommand = ["a"]\n[timeouts]\nstartup = "10m"\n', 4, "startup"),
        ('name = "x"\ncommand = ["a"]\n[timeouts]\nwarmup = 10\n', 4, "warmup"),
        ('name = "x"\ncommand = ["a"]\n[[smoke]]\nurl = "/x"\n', 4, "url"),
        ('name = "x"\ncommand = ["a"]\n[variants.e]\nadd_arg = ["--enforce-eager"]\n', 4, "add_arg"),
        ('name = "x"\ncommand = ["a"]\n[variants.e]\nset_args = { "--max-model-len" = 8192 }\n', 4, "--max-model-len"),
        ('name = "x"\ncommand = ["a"]\nshell = "yes"\n', 3, "shell"),
        ('name = "x"\ncommand = ["a"\n', None, None),
    ],
)
def test_malformed_recipes_name_line_and_key(tmp_path, text: str, line: int | None, key: str | None) -> None:
    with pytest.raises(DataFileError) as caught:
        load_recipe(write(tmp_path, text))
    error = caught.value
    assert error.key == key, str(error)
    if line is not None:
        assert error.line == line, str(error)
    assert str(error).startswith(str(tmp_path / "r.toml"))


def test_record_round_trip_gives_the_same_command_and_env(tmp_path) -> None:
    argv = [sys.executable, "-m", "workbench.sim", "healthy", "--port", "8001", "--max-model-len", "4096"]
    env = {"VLLM_LOGGING_LEVEL": "DEBUG", "NCCL_DEBUG": "INFO", "CUDA_LAUNCH_BLOCKING": None}
    recipe = recipe_from_run("rt", argv, env, "/work", expect="healthy")
    path = tmp_path / "rt.toml"
    path.write_text(recipe_toml(recipe))
    loaded = load_recipe(path)
    got_argv, got_env, cwd = loaded.resolve(None, port=1, environ={})
    assert got_argv == argv and got_env == env and cwd == "/work"


def test_secrets_are_never_written_and_are_asked_for(tmp_path) -> None:
    argv = ["vllm", "serve", "m", "--api-key", "sk-very-secret-123", "--hf-token=hf_secretsecret"]
    recipe = recipe_from_run("s", argv, {"HF_TOKEN": "hf_secretsecret", "MY_PASSWORD": "pw123456", "A": "1"})
    text = recipe_toml(recipe)
    assert "sk-very-secret-123" not in text and "hf_secretsecret" not in text and "pw123456" not in text
    path = tmp_path / "s.toml"
    path.write_text(text)
    loaded = load_recipe(path)
    assert set(loaded.missing_env({})) == {"HF_TOKEN", "MY_PASSWORD", "VLLM_API_KEY"}
    environ = {"HF_TOKEN": "hf_x1", "MY_PASSWORD": "p", "VLLM_API_KEY": "k1"}
    assert loaded.missing_env(environ) == []
    argv_out, env_out, _ = loaded.resolve(None, environ=environ)
    assert argv_out[argv_out.index("--api-key") + 1] == "k1" and env_out["HF_TOKEN"] == "hf_x1"


def test_variant_label_and_shell() -> None:
    variant = Variant("v", add_args=["--enforce-eager"], env={"TORCHDYNAMO_DISABLE": "1"})
    assert variant.label() == "--enforce-eager TORCHDYNAMO_DISABLE=1"
    recipe = Recipe(name="s", command=["echo", "a|b"], shell=True)
    assert recipe.resolve(None, environ={})[0] == ["/bin/sh", "-c", "echo a|b"]
    assert Recipe(name="n", command=["echo", "a|b"]).resolve(None, environ={})[0] == ["echo", "a|b"]  # no shell
