"""A run under debugpy: the command rewritten to listen for an IDE, the lines to reach it over
SSH, and telling "paused in the debugger" from "hung".

`python -m debugpy --listen 127.0.0.1:PORT [--wait-for-client] (-m MODULE | SCRIPT) ARGS` runs
the same program; a console script (`vllm`) is a Python file, so it is run as the script.
VLLM_ENABLE_V1_MULTIPROCESSING=0 keeps the engine core in the API server's process, where the
breakpoints are (or `subProcess: true` follows the children).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from workbench.core.probes.envreport import target_python
from workbench.core.probes.stacks import ProcessDump

SINGLE_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
# where debugpy's own code lives in a stack: a thread stopped at a breakpoint or pause waits in pydevd
DEBUGGER_FILES = re.compile(r"(?:^|[/\\])(?:pydevd[\w]*\.py|_pydevd[\w]*|debugpy[/\\])")
SUSPENDED_FUNCTIONS = {"_do_wait_suspend", "do_wait_suspend", "wait_for_client", "_wait_for_client"}


class DebugLaunchError(ValueError):
    """The command cannot be run under debugpy: the one-line why and what to do."""


@dataclass
class DebugPlan:
    argv: list[str]
    env_delta: dict[str, str | None]
    python: str
    port: int
    remote_root: str

    def ssh_line(self, host: str | None = None) -> str:
        return ssh_forward_line(self.port, host)

    def launch_json(self) -> str:
        return launch_json(self.port, self.remote_root)


def ssh_forward_line(port: int, host: str | None = None) -> str:
    where = host or f"{getpass.getuser()}@{socket.gethostname()}"
    return f"ssh -L {port}:127.0.0.1:{port} {where}"


def launch_json(port: int, remote_root: str, local_root: str = "${workspaceFolder}") -> str:
    """A VS Code attach configuration to paste into .vscode/launch.json."""
    config = {
        "version": "0.2.0",
        "configurations": [{
            "name": f"Attach to vLLM (workbench, port {port})",
            "type": "debugpy",
            "request": "attach",
            "connect": {"host": "127.0.0.1", "port": port},
            "pathMappings": [{"localRoot": local_root, "remoteRoot": remote_root}],
            "justMyCode": False,
            "subProcess": True,
        }],
    }
    return json.dumps(config, indent=2)


def _is_python(program: str) -> bool:
    return re.search(r"python[\d.]*$", os.path.basename(program)) is not None


def _has_python_shebang(script: str) -> bool:
    try:
        with open(script, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def debugpy_argv(argv: list[str], port: int, wait: bool = False, python: str | None = None) -> list[str]:
    """The same command run by `python -m debugpy --listen 127.0.0.1:PORT`."""
    if not argv:
        raise DebugLaunchError("no command to run under debugpy")
    if "debugpy" in argv[:4]:
        raise DebugLaunchError("the command already runs under debugpy")
    listen = ["-m", "debugpy", "--listen", f"127.0.0.1:{port}", *(["--wait-for-client"] if wait else [])]
    if _is_python(argv[0]):
        # keep the interpreter's own options (-u, -X ...) in front; debugpy takes -m, -c or a file
        i = 1
        while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-m", "-c"):
            i += 1
        if i >= len(argv):
            raise DebugLaunchError(f"{' '.join(argv)}: no module, -c or script for debugpy to run")
        return [argv[0], *argv[1:i], *listen, *argv[i:]]
    script = shutil.which(argv[0]) or argv[0]
    interpreter = python or target_python(argv)
    if not _has_python_shebang(script) or not _is_python(interpreter):
        raise DebugLaunchError(f"{argv[0]} is not a Python program (no python shebang): debugpy cannot run it")
    return [interpreter, *listen, script, *argv[1:]]


PROBE = ("import importlib.util as u, json; s = u.find_spec('vllm'); "
         "print(json.dumps({'debugpy': u.find_spec('debugpy') is not None, "
         "'vllm': s.submodule_search_locations[0] if s and s.submodule_search_locations else None}))")


def plan_debug_run(argv: list[str], port: int, wait: bool = False, single_process: bool = True,
                   cwd: str | None = None) -> DebugPlan:
    """Check the target environment has debugpy, then rewrite the command; DebugLaunchError if not."""
    python = argv[0] if argv and _is_python(argv[0]) else target_python(argv)
    try:
        done = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        raise DebugLaunchError(f"cannot run the target's Python ({python}) to look for debugpy") from None
    if not found.get("debugpy"):
        raise DebugLaunchError(f"debugpy is not installed in the target environment: {install_hint(python)}")
    rewritten = debugpy_argv(argv, port, wait, python)
    vllm_dir = found.get("vllm")
    # the remote side of pathMappings: the folder above the vllm package (site-packages or a checkout)
    remote_root = os.path.dirname(vllm_dir) if vllm_dir else (cwd or os.getcwd())
    env: dict[str, str | None] = dict(SINGLE_PROCESS_ENV) if single_process else {}
    return DebugPlan(rewritten, env, python, port, remote_root)


def install_hint(python: str) -> str:
    return f"{python} -m pip install debugpy   (or: uv pip install --python {python} debugpy)"


def paused_in_debugger(dumps: Iterable[ProcessDump]) -> str | None:
    """Why the tree is waiting on a debugger (threads stopped in pydevd, or waiting for the IDE),
    or None when nothing says so."""
    for dump in dumps:
        for thread in dump.threads:
            for frame in thread.frames[:8]:  # innermost first: the wait is near the top
                if frame.name.rsplit(".", 1)[-1] in SUSPENDED_FUNCTIONS and DEBUGGER_FILES.search(frame.filename):
                    what = "waiting for the debugger to attach" if "wait_for_client" in frame.name else \
                        "stopped in the debugger (a breakpoint or pause)"
                    return f"PID {dump.pid} thread {thread.name or thread.thread_id} is {what}"
    return None


def without_debugpy(argv: list[str]) -> list[str]:
    """The command again without `-m debugpy --listen ADDR [--wait-for-client]` (a script stays
    run by its interpreter, which is what its shebang did)."""
    for i in range(len(argv) - 1):
        if argv[i] == "-m" and argv[i + 1] == "debugpy":
            j = i + 2
            while j < len(argv) and argv[j] in ("--listen", "--wait-for-client", "--log-to"):
                j += 2 if argv[j] in ("--listen", "--log-to") else 1
            return [*argv[:i], *argv[j:]]
    return list(argv)


def debug_port_of(argv: list[str]) -> int | None:
    """The port a debugpy command line listens on, or None when it is not under debugpy."""
    for i, word in enumerate(argv[:-1]):
        if word == "--listen" and "debugpy" in argv[max(0, i - 2):i]:
            try:
                return int(argv[i + 1].rsplit(":", 1)[-1])
            except ValueError:
                return None
    return None


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
