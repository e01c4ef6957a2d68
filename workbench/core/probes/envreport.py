"""The environment report of a bug report, gathered with the *target's* Python.

The workbench may live in its own venv; what matters is the interpreter that runs `vllm`, so the
probe runs there (package versions and where `vllm` is imported from, without importing it).
Tools that are missing degrade to "not found".
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.core.knowledge.envcheck import version_pairing
from workbench.core.secrets import is_secret_name

PACKAGES = ("vllm", "vllm-ascend", "torch", "torch-npu", "transformers", "triton")
ENV_PREFIXES = ("VLLM_", "CUDA_", "NCCL_", "HCCL_", "ASCEND_", "TORCH", "PYTORCH_", "HF_", "OMP_", "RAY_",
                "NVIDIA_", "LD_LIBRARY_PATH")
NOT_FOUND = "not found"
CANN_VERSION_FILES = ("/usr/local/Ascend/ascend-toolkit/latest/version.cfg",
                      "/usr/local/Ascend/ascend-toolkit/latest/compiler/version.info")

PROBE = r"""
import importlib.metadata as md, importlib.util as iu, json, platform, sys
out = {"python": sys.version.split()[0], "executable": sys.executable, "packages": {}}
for name in sys.argv[1:]:
    try:
        out["packages"][name] = md.version(name)
    except Exception:
        out["packages"][name] = None
spec = iu.find_spec("vllm")
out["vllm_file"] = spec.origin if spec else None
print(json.dumps(out))
"""


def target_python(argv: list[str]) -> str:
    """The interpreter that will run the command: itself, or a console script's shebang."""
    if not argv:
        return sys.executable
    program = shutil.which(argv[0]) or argv[0]
    if re.search(r"python[\d.]*$", os.path.basename(program)):
        return program
    try:
        with open(program, "rb") as handle:
            first = handle.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return sys.executable
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
            return shutil.which(parts[1]) or parts[1]
        if parts:
            return parts[0]
    return sys.executable


def _run(cmd: list[str], timeout: float = 20.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def probe_python(python: str, timeout: float = 60.0) -> dict:
    try:
        done = subprocess.run([python, "-c", PROBE, *PACKAGES], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return {"python": NOT_FOUND, "executable": python, "packages": {}, "vllm_file": None,
                "error": f"could not run {python}"}


def _checkout_warning(vllm_file: str | None, cwd: str) -> str | None:
    """The "my change is not picked up" trap: a vLLM checkout here, but vllm imported from elsewhere."""
    root = Path(cwd).resolve()
    for candidate in (root, *root.parents):
        if (candidate / "vllm" / "__init__.py").exists() and (candidate / ".git").exists():
            if vllm_file is None or not Path(vllm_file).resolve().is_relative_to(candidate):
                return (f"vllm is imported from {vllm_file or 'nowhere'}, not from the checkout at {candidate}: "
                        "your edits there are not what runs (pip install -e that checkout, or fix PYTHONPATH)")
            return None
    return None


def _cann_version() -> str | None:
    for path in CANN_VERSION_FILES:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        found = re.search(r"(?:^|\n)\s*(?:Version|version)\s*[=:]\s*([^\s]+)", text)
        return found.group(1) if found else text.strip().splitlines()[0]
    return None


def relevant_env(env: dict[str, str]) -> dict[str, str]:
    """The variables that change vLLM's behaviour; secrets are dropped, not masked."""
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIXES) and not is_secret_name(k)}


def environment_report(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    python = target_python(argv)
    probed = probe_python(python)
    gpus = _run(["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total,compute_cap",
                 "--format=csv,noheader"])
    cuda = _run(["nvidia-smi"])
    cuda_version = re.search(r"CUDA Version:\s*([\d.]+)", cuda or "")
    npus = _run(["npu-smi", "info"])
    amd = _run(["rocm-smi", "--showproductname", "--showdriverversion"])  # ROCm hosts
    report = {
        "command": argv[:1],
        "target_python": python,
        "python": probed.get("python", NOT_FOUND),
        "packages": {name: probed.get("packages", {}).get(name) or NOT_FOUND for name in PACKAGES},
        "vllm_file": probed.get("vllm_file") or NOT_FOUND,
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "gpus": gpus.splitlines() if gpus else NOT_FOUND,
        "cuda_driver": cuda_version.group(1) if cuda_version else NOT_FOUND,
        "npus": npus.splitlines()[:12] if npus else NOT_FOUND,
        "rocm_gpus": [x for x in amd.splitlines() if x.strip() and not x.startswith("=")][:12] if amd else NOT_FOUND,
        "cann": _cann_version() or NOT_FOUND,
        "env": relevant_env(env),
        "warnings": [],
    }
    if "error" in probed:
        report["warnings"].append(probed["error"])
    report["warnings"] += version_pairing({k: v for k, v in report["packages"].items() if v != NOT_FOUND})
    warning = _checkout_warning(probed.get("vllm_file"), cwd or os.getcwd())
    if warning:
        report["warnings"].append(warning)
    return report


def report_text(report: dict) -> str:
    lines = [f"Python        {report['python']} ({report['target_python']})"]
    lines += [f"{name:<13} {version}" for name, version in report["packages"].items()]
    lines.append(f"vllm from     {report['vllm_file']}")
    lines.append(f"OS            {report['os']}")
    gpus = report["gpus"]
    lines.append(f"GPUs          {'; '.join(gpus) if isinstance(gpus, list) else gpus}")
    lines.append(f"CUDA driver   {report['cuda_driver']}")
    npus = report["npus"]
    lines.append(f"NPUs          {'; '.join(n.strip() for n in npus[:3]) if isinstance(npus, list) else npus}")
    lines.append(f"CANN          {report['cann']}")
    amd = report.get("rocm_gpus", NOT_FOUND)
    lines.append(f"ROCm GPUs     {'; '.join(a.strip() for a in amd[:3]) if isinstance(amd, list) else amd}")
    lines.append("Environment   " + (", ".join(f"{k}={v}" for k, v in report["env"].items()) or "none of note"))
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"
