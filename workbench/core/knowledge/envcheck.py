"""Configuration traps visible before launch, from the command line and the environment."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path

from workbench.core.cmdline import flag_value, has_flag
from workbench.core.tomlfile import DataFileError, load_toml

_KNOWN_VLLM_ENV = Path(__file__).resolve().parents[2] / "data" / "vllm_env_names.txt"


@lru_cache(maxsize=1)
def known_vllm_env_names() -> frozenset[str]:
    try:
        text = _KNOWN_VLLM_ENV.read_text()
    except OSError:
        return frozenset()
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def _visible_devices(env: dict[str, str]) -> int | None:
    for name in ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "ASCEND_VISIBLE_DEVICES"):
        value = env.get(name)
        if value is not None:
            return len([d for d in value.split(",") if d.strip()])
    return None


def check_environment(argv: list[str], env: dict[str, str]) -> list[str]:
    warnings: list[str] = []
    if env.get("VLLM_TRACE_FUNCTION", "0") not in ("", "0"):
        warnings.append(
            "VLLM_TRACE_FUNCTION is on: every Python call is recorded to files; serving slows by "
            "100x or more. Turn it off when done."
        )
    if env.get("ASCEND_LAUNCH_BLOCKING", "0") not in ("", "0") and not has_flag(argv, "--enforce-eager"):
        warnings.append(
            "ASCEND_LAUNCH_BLOCKING=1 conflicts with ACL graph mode: vllm-ascend refuses it; add "
            "--enforce-eager or unset it."
        )
    if env.get("CUDA_LAUNCH_BLOCKING", "0") not in ("", "0"):
        warnings.append("CUDA_LAUNCH_BLOCKING=1 makes every kernel synchronous: expect slow serving.")
    tp = flag_value(argv, "--tensor-parallel-size") or flag_value(argv, "-tp")
    visible = _visible_devices(env)
    if tp and tp.isdigit() and visible is not None and int(tp) > visible:
        warnings.append(
            f"--tensor-parallel-size {tp} is larger than the {visible} visible device(s) "
            "(CUDA_VISIBLE_DEVICES / ASCEND_RT_VISIBLE_DEVICES)."
        )
    known = known_vllm_env_names()
    if known:
        for name in sorted(env):
            if name.startswith("VLLM_") and name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]}?)" if close else ""
                warnings.append(f"unknown vLLM environment variable {name}{hint}")
    return warnings


_PAIRING = Path(__file__).resolve().parents[2] / "data" / "version_pairing.toml"
_RELEASE = re.compile(r"^(\d+\.\d+\.\d+)")


def _release(version: str | None) -> str | None:
    found = _RELEASE.match(version or "")
    return found.group(1) if found else None


@lru_cache(maxsize=1)
def _pairing() -> dict:
    try:
        return load_toml(_PAIRING)[0]
    except (OSError, DataFileError):
        return {}


def version_pairing(packages: dict[str, str | None]) -> list[str]:
    """What is installed against what it was built for, where the projects say: vLLM vs its
    torch pin, vllm-ascend vs vLLM, torch-npu vs torch. One sentence per mismatch."""
    table = _pairing()
    vllm, torch = _release(packages.get("vllm")), _release(packages.get("torch"))
    notes: list[str] = []
    pinned = table.get("vllm_torch", {}).get(vllm or "")
    if pinned and torch and torch != pinned:
        notes.append(f"vllm {packages['vllm']} is built against torch {pinned}; torch {packages['torch']} is "
                     "installed (undefined symbols in vllm/_C are the usual result)")
    ascend = _release(packages.get("vllm-ascend"))
    if table.get("rules", {}).get("vllm_ascend_follows_vllm") and ascend and vllm and ascend != vllm:
        notes.append(f"vllm-ascend {packages['vllm-ascend']} runs on vllm {ascend}; vllm {packages['vllm']} is installed")
    npu = _release(packages.get("torch-npu"))
    if table.get("rules", {}).get("torch_npu_follows_torch") and npu and torch and npu != torch:
        notes.append(f"torch-npu {packages['torch-npu']} runs on torch {npu}; torch {packages['torch']} is installed")
    return notes
