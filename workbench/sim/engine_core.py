"""The EngineCore-like child: prints the engine's startup, fails where the scenario says,
then answers generation requests from the API server over a socket."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from workbench.sim.logfmt import Logger, emit, traceback_lines
from workbench.sim.scenarios import SCENARIOS, Failure, Scenario


def set_process_title(title: str) -> None:
    try:
        import setproctitle  # type: ignore[import-not-found]

        setproctitle.setproctitle(title)
    except ImportError:
        pass
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(title[:15])
    except OSError:
        pass


class EngineCore:
    def __init__(self, config: dict, control: socket.socket) -> None:
        self.opts = config["opts"]
        self.env = dict(os.environ)
        self.scenario: Scenario = SCENARIOS[config["scenario"]]
        self.scale = float(self.opts["time_scale"])
        version = self.opts["log_format"]
        name = "EngineCore_DP0" if version == "0.11" else "EngineCore"
        self.log = Logger(name, version, debug=self.env.get("VLLM_LOGGING_LEVEL") == "DEBUG")
        self.control = control
        self.device = "NPU" if self.scenario.platform == "ascend" else "GPU"

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds * self.scale)

    def failing(self, stage: str) -> Failure | None:
        failure = self.scenario.failure
        if failure and failure.stage == stage and not failure.fixed_by(self.opts, self.env):
            return failure
        return None

    def die(self, failure: Failure, **values: object) -> None:
        for message in failure.before:
            self.log.error("v1/engine/core.py", 708, message)
        self.log.error("v1/engine/core.py", 708, "EngineCore failed to start.")
        exception = failure.exception.format(**values) if values else failure.exception
        text = traceback_lines(list(failure.frames), exception)
        self.log.error("v1/engine/core.py", 708, text)
        sys.stdout.flush()
        os._exit(1)

    def progress(self, label: str, total: int, seconds: float, busy: bool = False) -> None:
        """A tqdm bar redrawn with \\r, finished with a newline (the prefix only at the start)."""
        started = time.monotonic()
        prefix = self.log.prefix() if self.log.version == "0.11" else ""
        for i in range(total + 1):
            pct = int(100 * i / total)
            bar = "█" * (pct // 10) + " " * (10 - pct // 10)
            elapsed = time.monotonic() - started
            emit(f"\r{prefix}{label}: {pct:3d}%|{bar}| {i}/{total} [{elapsed:05.2f}<00:00, {i / max(elapsed, 0.01):.2f}it/s]")
            deadline = time.monotonic() + seconds * self.scale / total
            while busy and time.monotonic() < deadline:
                pass  # capture keeps a CPU busy: this is progress, not a hang
            if not busy:
                self.sleep(seconds / total)
        emit("\n")

    def start(self) -> None:
        o, log = self.opts, self.log
        log.info("v1/engine/core.py", 651, "Waiting for init message from front-end.")
        log.info(
            "v1/engine/core.py", 77,
            f"Initializing a V1 LLM engine (v{o['version']}) with config: model='{o['model']}', "
            f"speculative_config=None, tokenizer='{o['model']}', dtype=torch.bfloat16, max_seq_len={o['max_model_len']}, "
            f"tensor_parallel_size={o['tensor_parallel_size']}, enforce_eager={o['enforce_eager']}, seed=0",
        )
        log.debug("v1/engine/core.py", 80, "Engine core config details: {'scheduler': 'default'}")
        self.sleep(0.5)
        backend = "hccl" if self.scenario.platform == "ascend" else "nccl"
        log.info("distributed/parallel_state.py", 1165, "rank 0 in world size 1 is assigned as DP rank 0, PP rank 0, TP rank 0, EP rank 0")
        log.info("distributed/parallel_state.py", 1134, f"world_size=1 rank=0 local_rank=0 distributed_init_method=tcp://127.0.0.1:41235 backend={backend}")
        if (failure := self.failing("distributed")) is not None:
            self.die(failure)
        if self.scenario.hang_at == "distributed":
            wait_for_all_reduce()
        if self.scenario.hang_at == "tp_load":
            from workbench.sim import tp_hang

            log.info("v1/worker/gpu_model_runner.py", 2602, f"Starting to load model {o['model']}...")
            tp_hang.collective_rpc(tp_hang.start_workers(self.scenario.extra["tp"], self.scenario.extra["slow_rank"]))
        log.info("v1/attention/backends/flash_attn.py", 351, "Using Flash Attention backend on V1 engine." if o["log_format"] == "0.11"
                 else "Using FLASH_ATTN attention backend out of potential backends: ['FLASH_ATTN', 'FLEX_ATTENTION'].")
        self.load()
        self.compile()
        self.kv_cache()
        self.capture()
        log.info("v1/engine/core.py", 210, f"init engine (profile, create kv cache, warmup model) took {8.0 * self.scale + 12.3:.2f} seconds")

    def load(self) -> None:
        log = self.log
        log.info("v1/worker/gpu_model_runner.py", 2602, f"Starting to load model {self.opts['model']}...")
        self.progress("Loading safetensors checkpoint shards", 4, 2.0)
        if (failure := self.failing("loading")) is not None:
            self.die(failure)
        log.info("model_executor/model_loader/default_loader.py", 267, "Loading weights took 2.31 seconds")
        log.info("v1/worker/gpu_model_runner.py", 2634, "Model loading took 14.2474 GiB and 3.104722 seconds")

    def compile(self) -> None:
        if self.opts["enforce_eager"] or self.env.get("TORCHDYNAMO_DISABLE") == "1":
            return
        log = self.log
        log.info("compilation/backends.py", 548, "Using cache directory: /root/.cache/vllm/torch_compile_cache/3f2a1b/rank_0_0/backbone for vLLM's torch.compile")
        log.info("compilation/backends.py", 559, "Dynamo bytecode transform time: 4.21 s")
        self.sleep(1.0)
        if (failure := self.failing("compiling")) is not None:
            self.die(failure)
        log.info("compilation/backends.py", 197, "Compiling a graph for dynamic shape takes 12.33 s")
        log.info("compilation/monitor.py", 34, "torch.compile takes 16.54 s in total")

    def kv_cache(self) -> None:
        log = self.log
        log.info("v1/worker/gpu_worker.py", 298, "Available KV cache memory: 1.00 GiB")
        if (failure := self.failing("kv_cache")) is not None:
            self.die(failure, max_len=self.opts["max_model_len"], need=self.opts["max_model_len"] / 8192)
        tokens = min(self.opts["max_model_len"], 8192)
        if self.opts["log_format"] == "0.11":
            log.info("v1/core/kv_cache_utils.py", 1087, f"{self.device} KV cache size: {tokens:,} tokens")
            log.info("v1/core/kv_cache_utils.py", 1091, f"Maximum concurrency for {tokens:,} tokens per request: 1.00x")
        else:
            log.info("v1/core/kv_cache_utils.py", 1087, f"{self.device} KV cache size: {tokens:,} tokens, Maximum concurrency for {tokens:,} tokens per request: 1.00x")

    def capture(self) -> None:
        if self.opts["enforce_eager"]:
            return
        log = self.log
        seconds = self.scenario.capture_seconds
        busy = seconds > 5
        if self.scenario.platform == "ascend":
            log.info("compilation/acl_graph.py", 120, "Starting to capture ACL graphs for cases: [1, 2, 4, 8], mode: PIECEWISE, uniform_decode: False")
            self.progress("Capturing ACL graphs (mixed prefill-decode, PIECEWISE)", 8, seconds, busy)
        else:
            self.progress("Capturing CUDA graphs (mixed prefill-decode, PIECEWISE)", 12, seconds * 0.6, busy)
            if (failure := self.failing("graph_capture")) is not None:
                self.die(failure)
            self.progress("Capturing CUDA graphs (decode, FULL)", 8, seconds * 0.4, busy)
        if (failure := self.failing("graph_capture")) is not None:
            self.die(failure)
        log.info("v1/worker/gpu_model_runner.py", 3480, f"Graph capturing finished in {max(1, int(seconds))} secs, took 0.45 GiB")

    def serve(self) -> None:
        self.control.sendall(b"READY\n")
        reader = self.control.makefile("r")
        answered = 0
        for line in reader:
            words = line.split()
            if not words:
                continue
            if words[0] == "GEN":
                if (failure := self.failing("first_request")) is not None:
                    for message in failure.before:
                        self.log.error("v1/engine/core.py", 718, message)
                    self.log.error("v1/engine/core.py", 718, traceback_lines(list(failure.frames), failure.exception))
                    sys.stdout.flush()
                    os._exit(1)
                if self.scenario.hang_at == "second_request" and answered >= 1:
                    wait_for_all_reduce()  # a collective that never completes: idle, in a recognisable frame
                answered += 1
                n = int(words[1]) if len(words) > 1 else 8
                text = " ".join(["Hello!", "I", "am", "a", "simulated", "model", "answering", "deterministically"][: max(1, n)])
                self.control.sendall(f"TEXT {text}\n".encode())
        os._exit(0)  # the API server went away: so do we


def wait_for_all_reduce() -> None:
    """Where the `hang` scenario sits: idle, recognisable in a stack dump."""
    while True:
        time.sleep(1.0)


def watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def run_in_process(config: dict, control: socket.socket) -> None:
    """VLLM_ENABLE_V1_MULTIPROCESSING=0: the engine core as a thread of the API server."""
    engine = EngineCore(config, control)
    engine.start()
    engine.serve()


def main() -> None:
    config = json.loads(sys.argv[1])
    control = socket.socket(fileno=int(sys.argv[2]))
    set_process_title("VLLM::EngineCore")
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    engine = EngineCore(config, control)
    engine.start()
    engine.serve()


if __name__ == "__main__":
    main()
