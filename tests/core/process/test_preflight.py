import os
import socket
import sys

from workbench.core.cmdline import apply_arg_delta, server_address, toggle_flag
from workbench.core.process.preflight import run_preflight


def test_port_holder_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        check = run_preflight(["vllm", "serve", "m", "--port", str(port)] if False else
                              [sys.executable, "-m", "http.server", "--port", str(port)], dict(os.environ))
        assert not check.ok
        assert f"port {port} is already in use by PID {os.getpid()}" in check.problems[0]


def test_missing_command_is_fatal() -> None:
    check = run_preflight(["definitely-not-a-command-xyz"], dict(os.environ))
    assert check.fatal and "command not found" in check.fatal[0]


def test_config_traps_are_warned(monkeypatch) -> None:
    env = {**os.environ, "VLLM_TRACE_FUNCTION": "1", "VLLM_LOGGING_LEVL": "DEBUG", "CUDA_VISIBLE_DEVICES": "0,1"}
    check = run_preflight([sys.executable, "-c", "pass", "--tensor-parallel-size", "4"], env)
    text = "\n".join(check.warnings)
    assert "VLLM_TRACE_FUNCTION" in text and "100x" in text
    assert "VLLM_LOGGING_LEVL (did you mean VLLM_LOGGING_LEVEL?)" in text
    assert "--tensor-parallel-size 4 is larger than the 2 visible" in text


def test_server_address_and_flag_edits() -> None:
    assert server_address(["vllm", "serve", "m"]) == ("0.0.0.0", 8000)
    assert server_address(["vllm", "serve", "m", "--port=9001", "--host", "127.0.0.1"]) == ("127.0.0.1", 9001)
    assert server_address(["python", "train.py"]) is None
    argv = ["vllm", "serve", "m", "--max-model-len", "32768"]
    assert apply_arg_delta(argv, {"--max-model-len": "8192"}) == ["vllm", "serve", "m", "--max-model-len", "8192"]
    assert toggle_flag(argv, "--enforce-eager")[-1] == "--enforce-eager"
    assert toggle_flag(toggle_flag(argv, "--enforce-eager"), "--enforce-eager") == argv
    assert apply_arg_delta(argv, {"--max-model-len": False}) == ["vllm", "serve", "m"]
