"""The environment report: the target's Python, optional tools present or not, secrets dropped."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from workbench.core.probes.envreport import (
    NOT_FOUND,
    environment_report,
    report_text,
    target_python,
)


def _tool(directory: Path, name: str, output: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_target_python_from_a_console_script_shebang(tmp_path) -> None:
    script = tmp_path / "vllm"
    script.write_text(f"#!{sys.executable}\nprint('hi')\n")
    script.chmod(0o755)
    assert target_python([str(script), "serve", "m"]) == sys.executable
    assert target_python([sys.executable, "-m", "vllm.entrypoints.cli.main"]) == sys.executable
    env_script = tmp_path / "tool"
    env_script.write_text("#!/usr/bin/env python3\n")
    env_script.chmod(0o755)
    assert os.path.basename(target_python([str(env_script)])).startswith("python3")


def test_report_without_the_optional_tools(tmp_path) -> None:
    env = {"PATH": str(tmp_path), "HF_TOKEN": "hf_secret_value", "VLLM_LOGGING_LEVEL": "DEBUG",
           "MY_API_KEY": "k3y-value", "HOME": str(tmp_path)}
    report = environment_report([sys.executable, "-c", "pass"], env=env, cwd=str(tmp_path))
    assert report["gpus"] == NOT_FOUND and report["npus"] == NOT_FOUND and report["cuda_driver"] == NOT_FOUND
    assert report["python"] == sys.version.split()[0]
    assert report["packages"]["vllm"] == NOT_FOUND or report["packages"]["vllm"][0].isdigit()
    assert report["env"] == {"VLLM_LOGGING_LEVEL": "DEBUG"}  # secrets dropped, not masked
    text = report_text(report)
    assert "hf_secret_value" not in text and "k3y-value" not in text and "HF_TOKEN" not in text


def test_report_with_nvidia_smi_and_npu_smi(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _tool(bin_dir, "nvidia-smi", "0, NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 9.0\n| CUDA Version: 12.4 |")
    _tool(bin_dir, "npu-smi", "+------+\n| npu-smi 24.1.rc2   Version: 24.1.rc2 |\n| 0  910B3  OK |")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    report = environment_report([sys.executable], env={}, cwd=str(tmp_path))
    assert any("H100" in gpu for gpu in report["gpus"])
    assert report["cuda_driver"] == "12.4"
    assert any("910B3" in line for line in report["npus"])


def test_warns_when_vllm_is_not_imported_from_the_checkout_here(tmp_path) -> None:
    checkout = tmp_path / "vllm-src"
    (checkout / "vllm").mkdir(parents=True)
    (checkout / "vllm" / "__init__.py").write_text("")
    (checkout / ".git").mkdir()
    report = environment_report([sys.executable], env={}, cwd=str(checkout / "vllm"))
    assert any("not from the checkout" in w for w in report["warnings"])
