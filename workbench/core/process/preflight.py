"""Checks before launch: can the command run, is its port free (and who holds it), are stale
vLLM servers alive, and does the environment hold a known trap."""

from __future__ import annotations

import errno
import os
import shutil
import socket
from dataclasses import dataclass, field

import psutil

from workbench.core.cmdline import flag_value, server_address
from workbench.core.knowledge.envcheck import check_environment
from workbench.core.knowledge.modelcheck import ServeOptions, check_folder, model_dir_of
from workbench.core.probes.envreport import target_python
from workbench.core.probes.registry import cached_registry, target_platform


@dataclass
class PortHolder:
    pid: int | None
    name: str
    cmdline: str

    def describe(self) -> str:
        if self.pid is None:
            return "a process we cannot see (another user or namespace)"
        return f"PID {self.pid} ({self.name}: {self.cmdline[:160]})"


@dataclass
class Preflight:
    problems: list[str] = field(default_factory=list)  # refuse to launch (unless --force)
    warnings: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)  # cannot launch at all (command missing)
    port: int | None = None
    host: str | None = None
    holders: list[PortHolder] = field(default_factory=list)
    model_check: dict | None = None  # the model folder's report, recorded in the session

    @property
    def ok(self) -> bool:
        return not self.problems and not self.fatal


def resolve_command(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """Absolute path of the program, or None when it does not exist / is not executable."""
    if not argv:
        return None
    prog = argv[0]
    if os.sep in prog:
        path = prog if os.path.isabs(prog) else os.path.join(cwd or os.getcwd(), prog)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    search = (env or os.environ).get("PATH", os.defpath)
    return shutil.which(prog, path=search)


def port_holders(port: int) -> list[PortHolder]:
    holders: list[PortHolder] = []
    seen: set[int | None] = set()
    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        conns = []
    for conn in conns:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid in seen:
            continue
        seen.add(conn.pid)
        if conn.pid is None:
            holders.append(PortHolder(None, "?", "?"))
            continue
        try:
            proc = psutil.Process(conn.pid)
            holders.append(PortHolder(conn.pid, proc.name(), " ".join(proc.cmdline())))
        except psutil.Error:
            holders.append(PortHolder(conn.pid, "?", "?"))
    return holders


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                return True  # not our question: the server will report the address itself
            raise
    return True


def stale_vllm_processes(exclude: set[int] | None = None) -> list[PortHolder]:
    """vLLM servers and engine cores already running (a common cause of busy ports/devices)."""
    exclude = exclude or set()
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        info = proc.info
        if info["pid"] in exclude or info["pid"] == os.getpid():
            continue
        name = info.get("name") or ""
        cmd = " ".join(info.get("cmdline") or [])
        if name.startswith("VLLM::") or " vllm serve" in f" {cmd}" or "vllm.entrypoints" in cmd:
            found.append(PortHolder(info["pid"], name, cmd))
    return found


def run_preflight(argv: list[str], env: dict[str, str], cwd: str | None = None,
                  strict: bool = False) -> Preflight:
    result = Preflight()
    if resolve_command(argv, cwd, env) is None:
        result.fatal.append(f"command not found or not executable: {argv[0] if argv else '(empty)'}")
        return result
    if cwd is not None and not os.path.isdir(cwd):
        result.fatal.append(f"working directory does not exist: {cwd}")
        return result
    address = server_address(argv)
    if flag_value(argv, "--port") is not None and address is None:
        result.fatal.append(f"--port must be a number, got {flag_value(argv, '--port')!r}")
        return result
    if address is not None:
        result.host, result.port = address
        try:
            free = port_is_free(result.host, result.port)
        except OSError as exc:
            result.warnings.append(f"could not check port {result.port}: {exc}")
            free = True
        if not free:
            result.holders = port_holders(result.port)
            who = "; ".join(h.describe() for h in result.holders) or "an unknown process"
            result.problems.append(f"port {result.port} is already in use by {who}")
    for stale in stale_vllm_processes():
        result.warnings.append(f"a vLLM process is already running: {stale.describe()}")
    result.warnings.extend(check_environment(argv, env))
    model_folder_checks(result, argv, env, cwd, strict)
    return result


def model_folder_checks(result: Preflight, argv: list[str], env: dict[str, str], cwd: str | None,
                        strict: bool) -> None:
    """The model folder's file checks (the registry only from its cache: importing vLLM is slow);
    a warning each, a refusal only with `strict`."""
    folder = model_dir_of(argv, cwd)
    if folder is None:
        return
    registry = cached_registry(target_python(argv)) or {}
    report = check_folder(folder, ServeOptions.from_argv(argv, target_platform(env, registry)),
                          registry.get("archs"))
    result.model_check = report.to_dict()
    for finding in report.findings:
        text = f"model folder: {finding.title} [{finding.id}]: {finding.actions[0].text if finding.actions else ''}"
        (result.problems if strict and finding.severity == "error" else result.warnings).append(text)
