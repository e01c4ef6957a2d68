"""`workbench sim SCENARIO`: the API-server side of the stand-in for `vllm serve`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from workbench.sim import perf
from workbench.sim.logfmt import Logger, emit, traceback_lines
from workbench.sim.scenarios import SCENARIOS
from workbench.sim.serving import (
    RequestGauges,
    client_error,
    log_engine_death,
    log_request_failed,
    monitor_engine,
    start_watchdog,
)

VERSIONS = {"0.11": "0.11.0", "0.32": "0.32.0"}


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="workbench sim", description="A stand-in for `vllm serve`.")
    p.add_argument("scenario", nargs="?")
    p.add_argument("--list", action="store_true")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct")
    p.add_argument("--max-model-len", type=int, default=32768)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--log-format", choices=sorted(VERSIONS), default=os.environ.get("WORKBENCH_SIM_FORMAT", "0.11"))
    p.add_argument("--time-scale", type=float, default=float(os.environ.get("WORKBENCH_SIM_TIME_SCALE", "1.0")))
    p.add_argument("--rate", type=int, default=100_000, help="log-flood: lines per second (0: as fast as possible)")
    p.add_argument("--lines", type=int, default=0, help="log-flood: stop after this many lines")
    p.add_argument("--seconds", type=float, default=30.0, help="log-flood: flood this long")
    return p.parse_known_args(argv)


class ApiServer:
    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        self.args = args
        self.extra = extra
        self.scenario = SCENARIOS[args.scenario]
        self.log = Logger("APIServer", args.log_format, debug=os.environ.get("VLLM_LOGGING_LEVEL") == "DEBUG")
        self.version = VERSIONS[args.log_format]
        self.engine: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.control_lock = threading.Lock()
        self.holder: subprocess.Popen | None = None
        self.httpd: ThreadingHTTPServer | None = None
        self.engine_dead = False
        self.scheduler: perf.Scheduler | None = None  # serving starts after the engine is up
        self.stopping = False
        self.gauges = RequestGauges()
        self._death_lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.args.time_scale)

    # -- startup ---------------------------------------------------------------------------------

    def banner(self) -> None:
        a, log = self.args, self.log
        if a.log_format == "0.11":
            log.info("entrypoints/openai/api_server.py", 1839, f"vLLM API server version {self.version}")
        else:
            for art in ("       █     █     █▄   ▄█", " ▄▄ ▄█ █     █     █ ▀▄▀ █  version " + self.version,
                        "  █▄█▀ █     █     █     █  model   " + a.model, "   ▀▀  ▀▀▀▀▀ ▀▀▀▀▀ ▀     ▀"):
                log.info("entrypoints/utils.py", 233, art)
        shown = {"model": a.model, "port": a.port}
        if a.max_model_len != 32768:
            shown["max_model_len"] = a.max_model_len
        if a.enforce_eager:
            shown["enforce_eager"] = True
        log.info("entrypoints/utils.py", 233, f"non-default args: {shown}")
        if "VLLM_LOGGING_LEVL" in os.environ:
            log.warning("envs.py", 1577, "Unknown vLLM environment variable detected: VLLM_LOGGING_LEVL")
        log.info("config/model.py", 547, "Resolved architecture: Qwen2ForCausalLM")
        log.info("config/model.py", 1510, f"Using max model len {a.max_model_len}")
        log.info("config/scheduler.py", 205, "Chunked prefill is enabled with max_num_batched_tokens=8192.")
        if self.scenario.nasty:
            self.nasty_bytes()

    def start_engine(self) -> None:
        parent_end, child_end = socket.socketpair()
        opts = {
            "model": self.args.model, "max_model_len": self.args.max_model_len, "enforce_eager": self.args.enforce_eager,
            "tensor_parallel_size": self.args.tensor_parallel_size, "log_format": self.args.log_format,
            "time_scale": self.args.time_scale, "version": self.version,
        }
        config = json.dumps({"scenario": self.scenario.name, "opts": opts})
        if os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0":
            # like vLLM's in-process client: the engine core runs in this process (one to debug)
            from workbench.sim.engine_core import run_in_process

            threading.Thread(target=run_in_process, args=(json.loads(config), child_end),
                             name="EngineCore", daemon=True).start()
            self.control = parent_end
            return
        self.engine = subprocess.Popen(
            [sys.executable, "-m", "workbench.sim.engine_core", config, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
        )
        child_end.close()
        self.control = parent_end

    def wait_for_engine_startup(self) -> None:
        """Block until the engine core says READY; if it dies first, fail like vLLM does."""
        assert self.control is not None
        reply = self.control.makefile("r").readline()
        if reply.strip() == "READY":
            return
        code = self.engine.wait() if self.engine is not None else 1
        name = "EngineCore_DP0" if self.args.log_format == "0.11" else "EngineCore"
        frames = [
            ("entrypoints/openai/api_server.py", 1919, "run_server", "await run_server_worker(listen_address, sock, args, **uvicorn_kwargs)"),
            ("v1/engine/core_client.py", 639, "__init__", "with launch_core_engines(vllm_config, executor_class, log_stats) as ("),
            ("v1/engine/utils.py", 868, "wait_for_engine_startup", 'raise RuntimeError("Engine core initialization failed. "'),
        ]
        self.log.bare(traceback_lines(frames, f"RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {{'{name}': {code}}}"))
        sys.exit(1)

    def bind(self) -> None:
        a, log = self.args, self.log
        if a.log_format == "0.11":
            log.info("entrypoints/openai/api_server.py", 1634, "Supported_tasks: ['generate']")
            log.info("entrypoints/openai/api_server.py", 1912, f"Starting vLLM API server 0 on http://{a.host}:{a.port}")
        else:
            log.info("entrypoints/openai/api_server.py", 1634, "Supported tasks: ['generate']")
            log.info("entrypoints/openai/api_server.py", 1912, f"Starting vLLM server on http://{a.host}:{a.port}")
        log.info("entrypoints/launcher.py", 34, "Available routes are:")
        for route, methods in (("/health", "GET"), ("/v1/models", "GET"), ("/v1/chat/completions", "POST"), ("/v1/completions", "POST")):
            log.info("entrypoints/launcher.py", 42, f"Route: {route}, Methods: {methods}")
        handler = make_handler(self)
        try:
            ThreadingHTTPServer.allow_reuse_address = True
            ThreadingHTTPServer.request_queue_size = 2048  # uvicorn's backlog: a burst of connects is not dropped
            self.httpd = ThreadingHTTPServer((a.host, a.port), handler)
        except OSError as exc:
            frames = [
                ("entrypoints/openai/api_server.py", 1884, "run_server", "sock = create_server_socket(sock_addr)"),
                ("entrypoints/openai/api_server.py", 1826, "create_server_socket", "sock.bind(addr)"),
            ]
            self.log.bare(traceback_lines(frames, f"OSError: {exc}"))
            self.shutdown(1)
        self.log.bare(f"INFO:     Started server process [{os.getpid()}]")
        self.log.bare("INFO:     Waiting for application startup.")
        self.log.bare("INFO:     Application startup complete.")

    # -- serving ---------------------------------------------------------------------------------

    def generate(self, max_tokens: int) -> str | None:
        assert self.control is not None
        if self.engine_dead:
            log_request_failed(self.log)
            return None
        self.gauges.enter()
        try:
            with self.control_lock:  # a frozen engine child freezes every completion here
                try:
                    self.control.sendall(f"GEN {max_tokens}\n".encode())
                    reply = self.control.makefile("r").readline()
                except OSError:
                    reply = ""
        finally:
            self.gauges.leave()
        if reply.startswith("TEXT "):
            self.gauges.produced(len(reply.split()) - 1)
            return reply[5:].rstrip("\n")
        self.engine_died()
        log_request_failed(self.log)
        return None

    def engine_died(self) -> None:
        with self._death_lock:
            if self.engine_dead or self.stopping:
                return
            self.engine_dead = True
        log_engine_death(self.log, self.args.log_format)

    def stats_loop(self) -> None:
        # real seconds, as vLLM (VLLM_LOG_STATS_INTERVAL, default 10): --time-scale is for startup
        interval = float(os.environ.get("VLLM_LOG_STATS_INTERVAL") or 10.0)
        was_idle = False
        while True:
            time.sleep(interval if interval > 0 else 10.0)
            if self.engine_dead or self.scheduler is None:
                return
            line = self.scheduler.stats_line()
            idle = "Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 0.0 tokens/s" in line
            if not (idle and was_idle):  # V1 logs a second idle interval at DEBUG only
                self.log.info("v1/metrics/loggers.py", 127, line)
            was_idle = idle

    def flood(self) -> None:
        a = self.args
        prefix = self.log.prefix()
        line = prefix + "DEBUG {stamp} [v1/engine/core.py:812] EngineCore loop: scheduled {i} reqs, 128 tokens\n"
        started = time.monotonic()
        sent = 0
        batch = 2000 if a.rate == 0 else max(1, min(2000, a.rate // 50))
        while time.monotonic() - started < a.seconds and (a.lines == 0 or sent < a.lines):
            stamp = time.strftime("%m-%d %H:%M:%S")
            n = batch if a.lines == 0 else min(batch, a.lines - sent)
            emit("".join(line.format(stamp=stamp, i=sent + i) for i in range(n)))
            sent += n
            if a.rate:
                ahead = sent / a.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def nasty_bytes(self) -> None:
        emit(b"\x1b]52;c;SGVsbG8gZnJvbSB0aGUgY2hpbGQ=\x07clipboard write above\n")
        emit(b"\x1b]0;owned title\x07\x1b]2;another title\x1b\\title change above\n")
        emit(b"\x1b[2J\x1b[H\x1b[10Acursor moved\n")
        emit(b"\x1bP1$r0m\x1b\\DCS above\n")
        emit(b"C1 controls: \x9b31m \x9d0;x\x07 end\n")
        emit("bidi: \u202eevil\u202c ok\n".encode())
        emit(b"invalid utf-8: \xff\xfe\xfd and NUL \x00 byte\n")
        emit(b"progress: 10%\rprogress: 50%\rprogress: 100%\n")
        emit(b"L" * (1024 * 1024) + b"\n")

    def shutdown(self, code: int = 0) -> None:
        self.stopping = True
        if code == 0:
            self.log.info("entrypoints/launcher.py", 99, "Shutting down FastAPI HTTP server.")
            self.log.bare("INFO:     Shutting down")
            self.log.bare("INFO:     Waiting for application shutdown.")
            self.log.bare("INFO:     Application shutdown complete.")
        for proc in (self.engine, self.holder):
            if proc is not None and proc.poll() is None:
                proc.kill()
        sys.stdout.flush()
        os._exit(code)

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.shutdown(0))
        if self.scenario.hold_port:
            self.holder = hold_port(self.args.host, self.args.port)
        self.banner()
        self.start_engine()
        self.wait_for_engine_startup()
        self.scheduler = perf.Scheduler(self.args, self.extra)
        assert self.engine is not None
        monitor_engine(self.engine, lambda: self.stopping, self.engine_died)
        start_watchdog(lambda: self.engine_dead, lambda: self.shutdown(0), max(self.args.time_scale, 0.05))
        self.bind()
        threading.Thread(target=self.stats_loop, daemon=True).start()
        if self.scenario.flood:
            threading.Thread(target=self.flood, daemon=True).start()
        assert self.httpd is not None
        self.httpd.serve_forever()


def hold_port(host: str, port: int) -> subprocess.Popen:
    """A 'stale server' that really listens on the port before we try to."""
    code = (
        "import socket, sys, time, os\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(({host!r}, {port})); s.listen(); print('held', flush=True)\n"
        "parent = os.getppid()\n"
        "while os.getppid() == parent: time.sleep(0.2)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # type: ignore[union-attr]
    return proc


def make_handler(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, payload: dict | None, reason: str) -> None:
            body = json.dumps(payload).encode() if payload is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            host, port = self.client_address[:2]
            server.log.bare(f'INFO:     {host}:{port} - "{self.command} {self.path} HTTP/1.1" {status} {reason}')

        def _logged(self, status: int) -> None:
            host, port = self.client_address[:2]
            server.log.bare(f'INFO:     {host}:{port} - "{self.command} {self.path} HTTP/1.1" {status} OK')

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self.path == "/health":
                self._send(200 if not server.engine_dead else 503, None, "OK" if not server.engine_dead else "Service Unavailable")
            elif self.path == "/metrics" and server.scheduler is not None:
                self._send_text(200, server.scheduler.metrics_text(engine_bound=server.gauges.running))
            elif self.path == "/metrics":
                self._send_text(200, server.gauges.metrics_text(server.args.model))
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": server.args.model, "object": "model", "owned_by": "vllm",
                                                              "max_model_len": server.args.max_model_len}]}, "OK")
            else:
                self._send(404, {"detail": "Not Found"}, "Not Found")

        def _send_text(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            host, port = self.client_address[:2]
            server.log.bare(f'INFO:     {host}:{port} - "{self.command} {self.path} HTTP/1.1" {status} OK')

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "invalid JSON"}}, "Bad Request")
                return
            if self.path in ("/start_profile", "/stop_profile") and perf.profiler_dir(server.extra):
                if self.path == "/stop_profile":  # vLLM answers once the trace is written
                    perf.write_trace(perf.profiler_dir(server.extra) or "", 2.0)
                self._send(200, None, "OK")
                return
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self._send(404, {"detail": "Not Found"}, "Not Found")
                return
            refused = client_error(body, server.args.model, server.args.max_model_len)
            if refused is not None:
                status, payload, reason, message = refused
                server.log.debug("entrypoints/serve/exception_handling/error_response.py", 24,
                                 f"create_error_response called with {payload['error']['type']}: {message}")
                self._send(status, payload, reason)
                return
            first_fails = server.scenario.failure is not None and server.scenario.failure.stage == "first_request"
            if server.scheduler is not None and not first_fails and not server.engine_dead:
                # the engine process takes part in every request: a frozen or dead engine core
                # freezes or fails completions, as in vLLM
                if server.generate(1) is None:
                    message = "EngineCore encountered an issue. See stack trace (above) for the root cause."
                    self._send(500, {"error": {"message": message, "type": "InternalServerError", "code": 500}},
                               "Internal Server Error")
                    return
                perf.serve_completion(self, server.scheduler, body, self.path == "/v1/chat/completions", self._logged)
                return
            text = server.generate(int(body.get("max_tokens") or 16))
            if text is None:
                message = "EngineCore encountered an issue. See stack trace (above) for the root cause."
                self._send(500, {"error": {"message": message, "type": "InternalServerError", "code": 500}}, "Internal Server Error")
                return
            if self.path == "/v1/chat/completions":
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
            else:
                choice = {"index": 0, "text": text, "finish_reason": "length"}
            self._send(200, {"id": "cmpl-sim", "object": "chat.completion", "model": server.args.model, "choices": [choice],
                             "usage": {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}}, "OK")

    return Handler


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(list(sys.argv[1:] if argv is None else argv))
    if args.list or args.scenario is None:
        width = max(len(n) for n in SCENARIOS)
        for name, scenario in SCENARIOS.items():
            sys.stdout.write(f"{name:<{width}}  {scenario.description}\n")
        return 0 if args.list else 2
    if args.scenario not in SCENARIOS:
        sys.stderr.write(f"workbench sim: unknown scenario {args.scenario!r}; one of: {', '.join(SCENARIOS)}\n")
        return 2
    ApiServer(args, extra).run()
    return 0
