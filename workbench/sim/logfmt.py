"""vLLM's log line formats: 0.11 (cyan `(NAME pid=N)` prefix added to everything) and 0.32
(the prefix is part of the log format; uvicorn lines and tracebacks are bare)."""

from __future__ import annotations

import os
import sys
import threading
import time

CYAN = "\x1b[0;36m"
RESET = "\x1b[0m"
VLLM_ROOT = "/usr/local/lib/python3.12/dist-packages/vllm"
_write_lock = threading.Lock()


class Logger:
    def __init__(self, name: str, version: str, debug: bool = False, pid: int | None = None) -> None:
        self.name = name
        self.version = version
        self.debug_enabled = debug
        self.pid = pid or os.getpid()

    def prefix(self) -> str:
        label = f"({self.name} pid={self.pid})"
        return f"{CYAN}{label}{RESET} " if self.version == "0.11" else f"{label} "

    def record(self, level: str, path: str, line: int, message: str) -> str:
        # INFO prints the bare file name; DEBUG prints the path relative to the package
        where = path if self.debug_enabled else path.rsplit("/", 1)[-1]
        stamp = time.strftime("%m-%d %H:%M:%S")
        return "".join(
            f"{self.prefix()}{level} {stamp} [{where}:{line}] {part}\n" for part in message.split("\n")
        )

    def info(self, path: str, line: int, message: str) -> None:
        emit(self.record("INFO", path, line, message))

    def warning(self, path: str, line: int, message: str) -> None:
        emit(self.record("WARNING", path, line, message))

    def error(self, path: str, line: int, message: str) -> None:
        emit(self.record("ERROR", path, line, message))

    def debug(self, path: str, line: int, message: str) -> None:
        if self.debug_enabled:
            emit(self.record("DEBUG", path, line, message))

    def bare(self, text: str) -> None:
        """Lines vLLM does not log itself (uvicorn, tracebacks, prints): prefixed in 0.11."""
        if self.version == "0.11":
            emit("".join(f"{self.prefix()}{part}\n" for part in text.split("\n")))
        else:
            emit(text + "\n")


def emit(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    with _write_lock:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(sys.stdout.fileno(), view):]
            except BlockingIOError:
                time.sleep(0.001)


def traceback_lines(frames: list[tuple[str, int, str, str]], exception: str) -> str:
    """A Python traceback in vLLM's install layout (file, line, function, source)."""
    out = ["Traceback (most recent call last):"]
    for path, line, func, source in frames:
        out.append(f'  File "{VLLM_ROOT}/{path}", line {line}, in {func}')
        out.append(f"    {source}")
    out.append(exception)
    return "\n".join(out)
