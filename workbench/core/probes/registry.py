"""vLLM's model registry as the *target* environment has it, asked with the target's Python.

Importing vLLM takes seconds, so the answer is cached per interpreter and kept while vLLM's
package directory is unchanged; preflight reads only the cache, `workbench model-check` asks.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

PROBE = r"""
import importlib.util as iu, json, sys
out = {"vllm_ascend": iu.find_spec("vllm_ascend") is not None, "torch_npu": iu.find_spec("torch_npu") is not None}
try:
    import vllm
    out["vllm_dir"] = vllm.__path__[0]
    out["vllm"] = getattr(vllm, "__version__", "?")
    from vllm.model_executor.models import ModelRegistry
    out["archs"] = sorted(ModelRegistry.get_supported_archs())
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"[:300]
print("WB-REGISTRY " + json.dumps(out))
"""


def _cache_path(python: str) -> Path:
    key = hashlib.sha256(os.path.realpath(python).encode()).hexdigest()[:16]
    override = os.environ.get("WORKBENCH_STATE_DIR")  # the same cache the matcher keeps
    if override:
        return Path(override) / "cache" / "registry" / f"{key}.json"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vllm-workbench")) / "registry" / f"{key}.json"


def _fresh(entry: dict[str, Any]) -> bool:
    try:
        return os.stat(entry["vllm_dir"]).st_mtime == entry["vllm_mtime"]
    except (KeyError, OSError, TypeError):
        return False


def cached_registry(python: str) -> dict[str, Any] | None:
    """The cached answer for this interpreter, while vLLM there is unchanged; else None."""
    try:
        entry = json.loads(_cache_path(python).read_text())
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) and _fresh(entry) else None


def query_registry(python: str, timeout: float = 180.0, env: dict[str, str] | None = None) -> dict[str, Any]:
    """{"archs": [...], "vllm": version, ...} or {"error": why}; caches a good answer."""
    try:
        done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError:
        return {"error": f"no interpreter at {python}"}
    except subprocess.TimeoutExpired:
        return {"error": f"{python} took over {timeout:.0f} s to import vLLM"}
    except OSError as exc:
        return {"error": f"cannot run {python}: {exc.strerror}"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WB-REGISTRY ")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{python} could not be asked: {tail[:200]}"}
    answer: dict[str, Any] = json.loads(lines[-1].split(" ", 1)[1])
    answer["python"] = python
    if "archs" in answer:
        try:
            answer["vllm_mtime"] = os.stat(answer["vllm_dir"]).st_mtime
            path = _cache_path(python)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(answer))
        except OSError:
            pass  # a read-only cache dir only costs the next preflight its registry check
    return answer


def target_platform(env: dict[str, str], registry: dict[str, Any] | None = None) -> str:
    """ascend when the command will run on NPUs (visible-device variables or vllm-ascend there)."""
    if any(env.get(name) for name in ("ASCEND_RT_VISIBLE_DEVICES", "ASCEND_VISIBLE_DEVICES")):
        return "ascend"
    if registry and (registry.get("vllm_ascend") or registry.get("torch_npu")):
        return "ascend"
    if env.get("CUDA_VISIBLE_DEVICES"):
        return "cuda"
    return "any"
