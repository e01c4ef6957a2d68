"""A stand-in for vLLM's own multi-node mode: `--nnodes N --node-rank R --master-addr HEAD`.

Rank 0 (the head) opens a rendezvous port like torch's TCPStore, waits for the other ranks to
join and to finish loading, then serves the `healthy` scenario of the simulator on `--port`.
The other ranks (`--headless`) join, "load", and stay up until the head goes away. A rank named
by `--fail-on-rank` dies with an NCCL error after joining (the head then fails as a consequence);
a rank named by `--hang-on-rank` joins and then sits silent and idle, as a rank stuck in a
collective does, while the head keeps waiting for it.

    python -m workbench.sim.multinode --nnodes 2 --node-rank 0 --master-addr 127.0.0.1 \
        --master-port 29500 --port 8000
    python -m workbench.sim.multinode --nnodes 2 --node-rank 1 --master-addr 127.0.0.1 \
        --master-port 29500 --headless
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from workbench.sim.logfmt import Logger, traceback_lines

JOIN_TIMEOUT = 600.0  # seconds a head waits for the others, like a long TCPStore timeout


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workbench.sim.multinode")
    p.add_argument("--nnodes", type=int, default=2)
    p.add_argument("--node-rank", type=int, default=0)
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=29500)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--headless", action="store_true")
    p.add_argument("--fail-on-rank", type=int, default=-1)
    p.add_argument("--hang-on-rank", type=int, default=-1)
    p.add_argument("--log-format", choices=("0.11", "0.32"), default="0.32")
    p.add_argument("--time-scale", type=float, default=0.05)
    return p.parse_args(argv)


def _dist_line(log: Logger, a: argparse.Namespace) -> None:
    log.info("distributed/parallel_state.py", 1165,
             f"world_size={a.nnodes} rank={a.node_rank} local_rank=0 "
             f"distributed_init_method=tcp://{a.master_addr}:{a.master_port} backend=nccl")


def run_head(a: argparse.Namespace) -> int:
    log = Logger("APIServer", a.log_format)
    log.info("entrypoints/utils.py", 233, f"non-default args: {{'nnodes': {a.nnodes}, 'node_rank': 0, "
             f"'master_addr': '{a.master_addr}', 'port': {a.port}}}")
    store = socket.create_server((a.master_addr, a.master_port), reuse_port=False)
    _dist_line(log, a)
    peers: list[socket.socket] = []
    store.settimeout(JOIN_TIMEOUT)
    while len(peers) < a.nnodes - 1:
        conn, _ = store.accept()
        peers.append(conn)
        log.info("distributed/utils.py", 98, f"{len(peers) + 1}/{a.nnodes} ranks joined the rendezvous")
    for rank, conn in enumerate(peers, 1):
        conn.settimeout(2 * a.time_scale + 0.5)
        while True:  # a rank that is loading (or stuck) answers nothing: keep saying we wait
            try:
                reply = conn.recv(64)
            except TimeoutError:
                log.warning("distributed/device_communicators/shm_broadcast.py", 541,
                            f"No available shared memory broadcast block found in 60 seconds "
                            f"(waiting for rank {rank}).")
                continue
            break
        if not reply.startswith(b"loaded"):  # the rank went away: fail the way vLLM does
            frames = [("v1/engine/core_client.py", 639, "__init__", "with launch_core_engines(vllm_config, executor_class, log_stats) as ("),
                      ("v1/engine/utils.py", 868, "wait_for_engine_startup", 'raise RuntimeError("Engine core initialization failed. "')]
            log.bare(traceback_lines(frames, "RuntimeError: Engine core initialization failed. See root cause "
                                             "above. Failed core proc(s): {'EngineCore': 1}"))
            return 1
    serve = subprocess.Popen([sys.executable, "-m", "workbench.sim", "healthy", "--port", str(a.port),
                              "--log-format", a.log_format, "--time-scale", str(a.time_scale)])
    signal.signal(signal.SIGTERM, lambda *_: serve.terminate())
    try:
        return serve.wait()
    except KeyboardInterrupt:
        serve.send_signal(signal.SIGINT)
        return serve.wait()


def run_worker(a: argparse.Namespace) -> int:
    log = Logger("EngineCore", a.log_format)
    log.info("v1/engine/core.py", 93, f"Initializing a V1 LLM engine (headless, node rank {a.node_rank})")
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:  # the head may not be listening yet
        try:
            conn = socket.create_connection((a.master_addr, a.master_port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    _dist_line(log, a)
    if a.node_rank == a.fail_on_rank:
        time.sleep(a.time_scale)
        frames = [("v1/worker/gpu_worker.py", 212, "init_device", "init_worker_distributed_environment(self.vllm_config, self.rank,"),
                  ("distributed/parallel_state.py", 1021, "init_distributed_environment", "_WORLD = init_world_group(ranks, local_rank, backend)"),
                  ("torch/distributed/distributed_c10d.py", 4213, "barrier", "work = group.barrier(opts=opts)")]
        log.bare(traceback_lines(frames, "torch.distributed.DistBackendError: NCCL error in: "
                                         "/pytorch/torch/csrc/distributed/c10d/NCCLUtils.cpp:77, unhandled system "
                                         "error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5\n"
                                         "ncclSystemError: System call (e.g. socket, malloc) or external library "
                                         "call failed or device error."))
        conn.close()
        return 1
    if a.node_rank == a.hang_on_rank:
        threading.Event().wait()  # silent and idle, like a rank blocked in a collective
    log.info("model_executor/model_loader/default_loader.py", 262, "Loading weights took 0.05 seconds")
    conn.sendall(b"loaded")
    while conn.recv(64):  # up until the head goes away
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    a = parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return run_head(a) if a.node_rank == 0 and not a.headless else run_worker(a)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
