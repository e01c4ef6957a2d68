"""A run under debugpy: the rewritten command, the lines to paste, and a pause that is not a hang."""

from __future__ import annotations

import json
import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until, workbench
from workbench.core.engine.debugger import (
    DebugLaunchError,
    debugpy_argv,
    launch_json,
    plan_debug_run,
    ssh_forward_line,
)
from workbench.core.engine.engine import Engine
from workbench.core.engine.events import Notice, Verdict
from workbench.core.engine.settings import Settings
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.record.session import Session

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


def test_run_prints_the_ssh_and_launch_json_lines(tmp_path: Path, no_leaks: None) -> None:
    port, debug_port = free_port(), free_port()
    done = workbench("run", "--headless", "--quiet", "--json", "--debugpy", str(debug_port),
                     "--session-dir", str(tmp_path / "s"), "--",
                     sys.executable, "-m", "workbench.sim", "healthy", "--port", str(port), "--time-scale", "0.05")
    assert f"ssh -L {debug_port}:127.0.0.1:{debug_port} " in done.stderr
    assert f'"port": {debug_port}' in done.stderr and '"pathMappings"' in done.stderr
    assert "VLLM_ENABLE_V1_MULTIPROCESSING=0" in done.stderr
    result = json.loads(done.stdout)
    assert result["verdict"] == V.HEALTHY, done.stderr[-2000:]


def test_a_pause_in_the_debugger_is_not_a_hang(tmp_path: Path, no_leaks: None) -> None:
    port, debug_port = free_port(), free_port()
    plan = plan_debug_run([sys.executable, "-m", "workbench.sim", "slow-graph-capture", "--port", str(port)],
                          debug_port)
    settings = Settings()
    settings.stall_window = 3.0
    engine = Engine(Session(tmp_path / "session"), load_knowledge_base([]), settings)
    notices: list[str] = []
    verdicts: list[str] = []
    engine.bus.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else
                         verdicts.append(e.verdict) if isinstance(e, Verdict) else None)
    client: DapClient | None = None
    try:
        run = engine.launch(plan.argv, plan.env_delta)
        wait_until(lambda: run.diagnosis.phases.reached("graph_capture") or run.verdict is not None, timeout=120)
        assert run.verdict is None
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
        wait_until(lambda: any("paused in the debugger" in n for n in notices) or verdicts, timeout=120)
        assert verdicts == [] and run.verdict is None, notices
        assert any("stopped in the debugger" in n for n in notices), notices
        assert any(Path(p).exists() for p in run.dump_paths)  # the stacks that told it
    finally:
        if client is not None:
            threading.Thread(target=client.close, daemon=True).start()
        engine.shutdown()
