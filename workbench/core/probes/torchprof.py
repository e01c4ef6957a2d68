"""vLLM's own (torch) profiler on a live server: /start_profile, wait, /stop_profile, find the trace.

The routes exist only when the server was started with the profiler enabled: newer vLLM
takes `--profiler-config '{"profiler": "torch", "torch_profiler_dir": DIR}'`, older vLLM the
`VLLM_TORCH_PROFILER_DIR` variable. /stop_profile is always sent once /start_profile was, even
on Ctrl-C, so the profiler is never left running. /stop_profile returns only once the traces are
written (about 100 s for a tiny model on CPU, minutes for a big one): progress is shown while it
blocks, then the directory is searched for the new trace file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from workbench.core.probes.load import check_target

# `--profiler-config` appeared after 0.12; VLLM_TORCH_PROFILER_DIR still works (deprecated) in
# 0.15 and is gone by 0.20: the variable up to 0.14, the flag from 0.15 on
PROFILER_CONFIG_SINCE = (0, 15)


class ProfilerError(Exception):
    """The profiler cannot run on this server; the message says how to enable it."""


def relaunch_delta(version: str | None, trace_dir: str) -> tuple[dict[str, str], dict[str, str]]:
    """(args to set, env to set) that enable the profiler for this vLLM version."""
    parts = tuple(int(p) for p in (version or "").split(".")[:2] if p.isdigit())
    if not parts or parts >= PROFILER_CONFIG_SINCE:
        config = json.dumps({"profiler": "torch", "torch_profiler_dir": trace_dir})
        return {"--profiler-config": config}, {}
    return {}, {"VLLM_TORCH_PROFILER_DIR": trace_dir}


def how_to_enable(version: str | None, trace_dir: str = "./vllm-traces") -> str:
    args, env = relaunch_delta(version, trace_dir)
    if args:
        return "relaunch with " + " ".join(f"{k} '{v}'" for k, v in args.items()) + \
               " (older vLLM: VLLM_TORCH_PROFILER_DIR=" + trace_dir + ")"
    return f"relaunch with VLLM_TORCH_PROFILER_DIR={trace_dir} (newer vLLM: --profiler-config)"


def _traces(directory: Path) -> dict[Path, int]:
    if not directory.is_dir():
        return {}
    return {p: p.stat().st_size for p in directory.rglob("*") if p.is_file() and ".trace" in p.name
            and not p.name.endswith(".tmp")}


def wait_for_trace(directory: Path, before: dict[Path, int], progress: Callable[[str], None],
                   timeout: float = 900.0, poll: float = 0.5) -> Path | None:
    """The new trace file once its size holds still for two polls; None after `timeout`."""
    started = time.monotonic()
    sizes: dict[Path, int] = {}
    steady = 0
    while time.monotonic() - started < timeout:
        now = {p: s for p, s in _traces(directory).items() if p not in before}
        if now and now == sizes:
            steady += 1
            if steady >= 2:
                return max(now, key=lambda p: p.stat().st_mtime)
        else:
            steady = 0
        sizes = now
        progress(f"vLLM is writing the trace ... {time.monotonic() - started:.0f}s"
                 + (f" ({sum(now.values()) // 1024} KiB so far)" if now else ""))
        time.sleep(poll)
    return None


def _stop_with_progress(base: str, progress: Callable[[str], None], timeout: float) -> httpx.Response:
    """POST /stop_profile in a thread (it blocks while vLLM writes the trace), saying how long."""
    import threading

    box: dict[str, Any] = {}

    def stop() -> None:
        try:
            box["reply"] = httpx.post(base + "/stop_profile", timeout=timeout)
        except httpx.HTTPError as exc:
            box["error"] = exc

    thread = threading.Thread(target=stop, daemon=True, name="stop-profile")
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(1.0)
        if thread.is_alive():
            progress(f"profiler stopped; vLLM is writing the trace ... {time.monotonic() - started:.0f}s")
    if "error" in box:
        raise ProfilerError(f"{base}/stop_profile: {type(box['error']).__name__}: {box['error']}")
    return box["reply"]


def profile_server(url: str, seconds: float, trace_dir: str | None = None,
                   progress: Callable[[str], None] = lambda _: None, version: str | None = None,
                   trace_timeout: float = 900.0) -> dict[str, Any]:
    check_target(url)
    base = url.rstrip("/")
    directory = Path(trace_dir) if trace_dir else None
    before = _traces(directory) if directory else {}
    try:
        started = httpx.post(base + "/start_profile", timeout=60)
    except httpx.HTTPError as exc:
        raise ProfilerError(f"{base}/start_profile: {type(exc).__name__}: {exc}") from None
    if started.status_code == 404:
        raise ProfilerError(f"{base}: the profiler is not enabled on this server; {how_to_enable(version)}")
    if started.status_code != 200:
        raise ProfilerError(f"{base}/start_profile: HTTP {started.status_code} {started.text[:200]}")
    try:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            progress(f"profiling ... {left:.0f}s left")
            time.sleep(min(1.0, left))
    finally:  # never leave the profiler running, whatever happened above
        stopped = _stop_with_progress(base, progress, trace_timeout)
    if stopped.status_code != 200:
        raise ProfilerError(f"{base}/stop_profile: HTTP {stopped.status_code} {stopped.text[:200]}")
    trace = wait_for_trace(directory, before, progress, trace_timeout) if directory else None
    note = "" if trace else ("give --trace-dir (the server's torch_profiler_dir) to wait for the file"
                             if directory is None else f"no new trace in {directory} after {trace_timeout:.0f}s")
    return {"url": url, "seconds": seconds, "trace": str(trace) if trace else None, "note": note}
