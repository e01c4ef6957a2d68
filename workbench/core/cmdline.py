"""Reading and editing a server's command line: its address, and flag deltas."""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_VLLM_PORT = 8000

# Flags that take no value, so removing one never eats the next word.
BOOLEAN_FLAGS = {
    "--enforce-eager", "--trust-remote-code", "--disable-log-requests", "--disable-log-stats",
    "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
    "--disable-custom-all-reduce", "--enable-auto-tool-choice", "--headless",
}


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of `--flag V` or `--flag=V` (the last one wins, as with argparse)."""
    value = None
    for i, word in enumerate(argv):
        if word == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(flag + "="):
            value = word[len(flag) + 1 :]
    return value


def has_flag(argv: list[str], flag: str) -> bool:
    return any(w == flag or w.startswith(flag + "=") for w in argv)


def looks_like_vllm_server(argv: list[str]) -> bool:
    """`vllm serve`, the OpenAI api_server module, vllm-ascend's wrappers, or our simulator."""
    words = [os.path.basename(w) for w in argv[:4]]
    joined = " ".join(argv[:6])
    return (
        ("vllm" in words and "serve" in argv[:4])
        or "vllm.entrypoints" in joined
        or ("workbench" in words and "sim" in argv[:4])
        or "workbench.sim" in joined
    )


def server_address(argv: list[str]) -> tuple[str, int] | None:
    """(host, port) the command will listen on, when we can tell."""
    port_text = flag_value(argv, "--port")
    if port_text is None:
        if not looks_like_vllm_server(argv):
            return None
        port = DEFAULT_VLLM_PORT
    else:
        try:
            port = int(port_text)
        except ValueError:
            return None
    host = flag_value(argv, "--host") or "0.0.0.0"
    return host, port


def probe_host(host: str) -> str:
    """Where to connect to reach a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "::1"
    return host


def apply_arg_delta(argv: list[str], delta: Mapping[str, str | bool]) -> list[str]:
    """Set (`"--flag" = "V"`), add (`true`) or remove (`false`) flags; other words stay put."""
    out = list(argv)
    for flag, value in delta.items():
        out = _remove(out, flag)
        if value is True:
            out.append(flag)
        elif isinstance(value, str):
            out.extend([flag, value])
    return out


def _remove(argv: list[str], flag: str) -> list[str]:
    out: list[str] = []
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word.startswith(flag + "="):
            continue
        if word == flag:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if flag not in BOOLEAN_FLAGS and nxt is not None and not nxt.startswith("--"):
                skip = True
            continue
        out.append(word)
    return out


def toggle_flag(argv: list[str], flag: str) -> list[str]:
    """Add a boolean flag if absent, remove it if present (eager vs graph mode)."""
    return apply_arg_delta(argv, {flag: not has_flag(argv, flag)})


def apply_env_delta(env: Mapping[str, str], delta: Mapping[str, str | bool | None]) -> dict[str, str]:
    out = dict(env)
    for name, value in delta.items():
        if value is None or value is False:
            out.pop(name, None)
        elif value is True:
            out[name] = "1"
        else:
            out[name] = value
    return out
