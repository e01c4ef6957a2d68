"""A run under debugpy: the rewritten command, the lines to paste, and a pause that is not a hang."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until
from workbench.core.engine.debugger import (
    DebugLaunchError,
    debugpy_argv,
    launch_json,
    plan_debug_run,
    ssh_forward_line,
)
from workbench.core.knowledge import verdicts as V

pytest.importorskip("debugpy")


class DapClient:
    """Just enough of the Debug Adapter Protocol: Content-Length framed JSON over a socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""
        self.seq = 0
        self.messages: list[dict] = []

    def send(self, command: str, **arguments: object) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read_one(self) -> dict:
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, rest = self.buffer.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        return json.loads(rest[:length])

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the debug adapter closed the connection")
        return data

    def wait_for(self, predicate) -> dict:  # noqa: ANN001 - a test helper
        for message in self.messages:
            if predicate(message):
                return message
        while True:
            message = self._read_one()
            self.messages.append(message)
            if predicate(message):
                return message

    def response(self, seq: int) -> dict:
        return self.wait_for(lambda m: m.get("type") == "response" and m.get("request_seq") == seq)

    def event(self, name: str) -> dict:
        return self.wait_for(lambda m: m.get("type") == "event" and m.get("event") == name)

    def close(self) -> None:
        self.sock.close()


def connect_when_listening(port: int) -> DapClient:
    holder: list[DapClient] = []

    def attempt() -> bool:
        try:
            holder.append(DapClient(port))
            return True
        except OSError:
            return False

    wait_until(attempt, timeout=60)
    return holder[0]


def test_the_command_is_rewritten_for_modules_scripts_and_console_scripts(tmp_path: Path) -> None:
    assert debugpy_argv(["python3", "-u", "-m", "vllm.entrypoints.openai.api_server", "--port", "1"], 5678) == [
        "python3", "-u", "-m", "debugpy", "--listen", "127.0.0.1:5678", "-m", "vllm.entrypoints.openai.api_server",
        "--port", "1"]
    script = tmp_path / "vllm"
    script.write_text(f"#!{sys.executable}\nprint('hi')\n")
    script.chmod(0o755)
    assert debugpy_argv([str(script), "serve", "m"], 7, wait=True) == [
        sys.executable, "-m", "debugpy", "--listen", "127.0.0.1:7", "--wait-for-client", str(script), "serve", "m"]
    with pytest.raises(DebugLaunchError, match="not a Python program"):
        debugpy_argv(["/bin/sh", "-c", "true"], 7)


def test_the_lines_to_paste_are_right_for_the_port() -> None:
    assert ssh_forward_line(5679, "me@gpu-box") == "ssh -L 5679:127.0.0.1:5679 me@gpu-box"
    config = json.loads(launch_json(5679, "/srv/venv/lib/python3.12/site-packages"))["configurations"][0]
    assert config["request"] == "attach" and config["connect"] == {"host": "127.0.0.1", "port": 5679}
    assert config["pathMappings"] == [{"localRoot": "${workspaceFolder}",
                                       "remoteRoot": "/srv/venv/lib/python3.12/site-packages"}]
    assert config["subProcess"] is True


def test_a_target_without_debugpy_is_told_how_to_install_it(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    import venv

    venv.EnvBuilder(with_pip=False).create(bare)
    with pytest.raises(DebugLaunchError, match=r"not installed in the target environment: .*-m pip install debugpy"):
        plan_debug_run([str(bare / "bin" / "python"), "-m", "workbench.sim"], 5678)


def attach_and_pause(debug_port: int) -> DapClient:
    """initialize, attach, configurationDone, then pause the engine-core thread until it stops."""
    client = connect_when_listening(debug_port)
    client.response(client.send("initialize", adapterID="workbench-test", clientID="test",
                                linesStartAt1=True, columnsStartAt1=True, pathFormat="path"))
    attach = client.send("attach", justMyCode=False, subProcess=False)
    client.event("initialized")
    client.response(client.send("configurationDone"))
    client.response(attach)
    threads = client.response(client.send("threads"))["body"]["threads"]
    engine_thread = next(t["id"] for t in threads if t["name"] == "EngineCore")
    client.response(client.send("pause", threadId=engine_thread))
    client.event("stopped")
    return client


def test_a_pause_in_the_debugger_is_not_a_hang(tmp_path: Path, no_leaks: None) -> None:
    """`workbench run --debugpy`: the lines to paste, then a client pauses it and it is not called hung."""
    port, debug_port = free_port(), free_port()
    session = tmp_path / "s"
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "--headless", "--json", "--stall-window", "2",
         "--debugpy", str(debug_port), "--session-dir", str(session), "--",
         sys.executable, "-m", "workbench.sim", "slow-graph-capture", "--port", str(port), "--time-scale", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    client: DapClient | None = None
    try:
        wait_until(lambda: any("graph capture" in line for line in err) or proc.poll() is not None, timeout=120)
        text = "".join(err)
        assert f"ssh -L {debug_port}:127.0.0.1:{debug_port} " in text
        assert f'"port": {debug_port}' in text and '"pathMappings"' in text
        assert "VLLM_ENABLE_V1_MULTIPROCESSING=0" in text
        client = attach_and_pause(debug_port)
        wait_until(lambda: "paused in the debugger" in "".join(err) or proc.poll() is not None, timeout=120)
        text = "".join(err)
        assert "stopped in the debugger (a breakpoint or pause)" in text and "verdict: HUNG" not in text
        proc.send_signal(signal.SIGINT)  # it would stay paused: the user ends it
        result = json.loads(proc.communicate(timeout=60)[0])
        assert result["verdict"] != V.HUNG and result["exit_code"] == V.EXIT_INTERRUPTED
        assert list(session.glob("runs/*/stacks/*.json"))  # the stacks that told it
    finally:
        if client is not None:
            client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
