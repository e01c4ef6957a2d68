"""After ready, the verdict can still change: `workbench run --headless --serve` on the simulator
with its engine core killed, stopped, hung, or sent requests that are the client's fault —
through the real CLI, pty, HTTP, signals and py-spy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import httpx
import psutil

from tests.helpers import free_port, wait_until

SIM = [sys.executable, "-m", "workbench.sim"]
MODEL = "Qwen/Qwen2.5-0.5B-Instruct"


class Serving:
    """`workbench run --headless --serve --json` on a simulator scenario, watched from outside."""

    def __init__(self, scenario: str, *options: str, env: dict | None = None, extra: tuple[str, ...] = (),
                 server: list[str] | None = None, port: int | None = None, ready_timeout: float = 60) -> None:
        self.port = port or free_port()
        if server is None:
            server = [*SIM, scenario, "--port", str(self.port), "--time-scale", "0.05", "--log-format", "0.32", *extra]
        command = [sys.executable, "-m", "workbench", "run", "--headless", "--serve", "--json", *options, "--", *server]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
        self.stderr: list[str] = []
        self.serving = threading.Event()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        try:
            wait_until(lambda: self.serving.is_set() or self.proc.poll() is not None, timeout=ready_timeout,
                       what="serving")
            assert self.serving.is_set(), "".join(self.stderr)[-3000:]
        except BaseException:
            self.close()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """A failed test still leaves nothing behind: the workbench stops its tree on SIGINT."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        print("".join(self.stderr)[-4000:])  # shown by pytest when the test fails

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "serving; Ctrl-C stops" in line:
                self.serving.set()

    def engine_core(self) -> psutil.Process:
        kids = psutil.Process(self.proc.pid).children(recursive=True)
        return next(p for p in kids if "workbench.sim.engine_core" in " ".join(p.cmdline())
                    or " ".join(p.cmdline()).startswith("VLLM::EngineCore"))

    def result(self, interrupt: bool = False) -> tuple[int, dict, str]:
        if interrupt:
            self.proc.send_signal(signal.SIGINT)
        assert self.proc.stdout is not None
        try:
            out = self.proc.stdout.read()  # stderr is read by our own thread (communicate would race it)
            self.proc.wait(timeout=60)
        finally:
            self.close()
        self._reader.join(timeout=10)
        text = "".join(self.stderr)
        assert out.strip(), text[-3000:]
        return self.proc.returncode, json.loads(out.strip().splitlines()[-1]), text


def test_engine_core_killed_while_serving_is_failed_naming_sigkill(no_leaks) -> None:
    run = Serving("healthy")
    engine = run.engine_core()
    engine.send_signal(signal.SIGKILL)
    code, result, text = run.result()
    assert (code, result["verdict"]) == (10, "failed")
    assert f"(PID {engine.pid}) killed by SIGKILL" in result["reason"] and "OOM killer" in result["reason"]
    assert "verdict changed: healthy → FAILED" in text and "SIGKILL" in text
    assert [h["verdict"] for h in result["history"]] == ["healthy", "failed"]
    assert any("engine core exited unexpectedly" in e for e in result["history"][1]["evidence"])
    # the cascade's why no longer claims a traceback that is not there
    assert "traceback above" not in (result["root_cause"] or {}).get("why", "")


def test_engine_death_with_the_api_kept_alive_is_failed_with_its_errors_as_evidence(no_leaks) -> None:
    run = Serving("healthy", env={"VLLM_KEEP_ALIVE_ON_ENGINE_DEATH": "1"})
    run.engine_core().send_signal(signal.SIGKILL)
    code, result, _text = run.result()
    assert (code, result["verdict"]) == (10, "failed")
    assert "killed by SIGKILL" in result["reason"]
    assert "GET /health → 503" in result["history"][1]["evidence"]


def test_a_stopped_engine_core_while_serving_is_hung_with_a_dump_that_says_so(no_leaks) -> None:
    run = Serving("healthy", "--stall-window", "5")
    engine = run.engine_core()
    engine.send_signal(signal.SIGSTOP)
    stopped_at = psutil.time.monotonic()
    code, result, text = run.result()
    assert psutil.time.monotonic() - stopped_at <= 5 + 5  # within the stall window + 5 s
    assert (code, result["verdict"]) == (12, "hung")
    assert f"PID {engine.pid} (VLLM::EngineCor" in result["reason"] and "is stopped (state T)" in result["reason"]
    assert result["dumps"], "no stacks dumped"
    dump = json.loads(open(result["dumps"][-1]).read())
    stopped = [p for p in dump["processes"] if p["pid"] == engine.pid]
    assert stopped and stopped[0]["state"] == "T"
    assert "is stopped (state T): something sent SIGSTOP or a debugger holds it" in text
    assert "ptrace rights" not in text  # not a permission problem


def test_a_request_that_never_finishes_while_serving_is_hung(no_leaks) -> None:
    run = Serving("serve-hang", "--stall-window", "2", "--health-interval", "0.5")
    hanging = threading.Thread(target=_post, args=(run.url, {"model": MODEL, "prompt": "hello", "max_tokens": 4}),
                               daemon=True)
    hanging.start()
    code, result, _text = run.result()
    assert (code, result["verdict"]) == (12, "hung"), result["reason"]
    assert "request(s) in flight, no token" in result["reason"] and result["dumps"]


def test_client_errors_are_counted_warnings_and_the_server_stays_healthy(no_leaks) -> None:
    run = Serving("healthy", extra=("--max-model-len", "64"))
    long_prompt = {"model": MODEL, "messages": [{"role": "user", "content": "word " * 100}]}
    statuses = [_post(run.url, long_prompt) for _ in range(3)] + [_post(run.url, {"model": "gpt-4o", "prompt": "hi"})]
    assert statuses == [400, 400, 400, 404]
    wait_until(lambda: sum(" 404 Not Found" in line for line in run.stderr) >= 1, what="the access lines")
    code, result, _text = run.result(interrupt=True)
    assert (code, result["verdict"]) == (0, "healthy")
    found = {f["id"]: f for f in result["findings"]}
    assert found["client_error_400"]["count"] == 3 and found["client_error_400"]["severity"] == "warning"
    assert found["client_error_400"]["note"].startswith("3× 400")
    assert found["client_error_404"]["note"] == f"1× 404: a model name or path this server does not serve; this server serves {MODEL}"
    assert [h["verdict"] for h in result["history"]] == ["healthy"]


def _post(url: str, body: dict) -> int:
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    try:
        return httpx.post(url + path, json=body, timeout=60).status_code
    except httpx.HTTPError:
        return -1

