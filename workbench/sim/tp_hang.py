"""The `tp-hang` scenario's tensor-parallel workers: real processes stuck in different places.

The EngineCore starts one worker process per TP rank and waits for their answers. One rank is
still reading its weight shard (slow storage: a chunk, a pause, the next chunk); the others wait
for it in an all_reduce that never completes. Each is titled like vLLM's workers, so a stack dump
shows what a real TP hang shows: one rank somewhere else, the rest in the same collective.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHUNK = 64 * 1024
SHARD_BYTES = 1024 * 1024


def set_title(title: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(title[:15])
    except OSError:
        pass


def _read_chunk(handle: object, pause: float) -> bytes:
    data = handle.read(CHUNK)  # type: ignore[attr-defined]
    time.sleep(pause)  # slow storage: the shard trickles in
    return data


def safetensors_load_file(path: Path, pause: float) -> int:
    """Like safetensors' load_file on a slow network filesystem: it never gets to the end."""
    total = 0
    with open(path, "rb") as handle:
        path.unlink()  # open files outlive their name: nothing is left behind when the tree stops
        path.parent.rmdir()
        while True:
            data = _read_chunk(handle, pause)
            total += len(data)
            if not data:
                handle.seek(0)


def load_weights(shard: Path, pause: float) -> None:
    safetensors_load_file(shard, pause)


def all_reduce(group: str) -> None:
    """The collective its peers never join: the rank waits (idle, no CPU) for the slow one."""
    while True:
        time.sleep(1.0)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def worker_main(title: str, rank: int, slow_rank: int, shard: Path) -> None:
    set_title(title)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sys.stdout.write(f"({title.split('::')[-1]} pid={os.getpid()}) INFO [parallel_state.py:1165] rank {rank} in world size "
                     f"of the TP group is assigned as TP rank {rank}\n")
    sys.stdout.flush()
    if rank == slow_rank:
        load_weights(shard, pause=0.2)
    else:
        all_reduce("tp")


def start_workers(tp: int, slow_rank: int) -> list[subprocess.Popen]:
    """One process per rank; their output goes to the engine's (the server's) output."""
    shard = Path(tempfile.mkdtemp(prefix="sim-shard-")) / "model-00001-of-00001.safetensors"
    shard.write_bytes(os.urandom(1024) * (SHARD_BYTES // 1024))
    return [subprocess.Popen([sys.executable, "-m", "workbench.sim.tp_hang", f"VLLM::Worker_TP{rank}", str(rank),
                              str(slow_rank), str(shard)], stdin=subprocess.DEVNULL)
            for rank in range(tp)]


def collective_rpc(workers: list[subprocess.Popen]) -> None:
    """The EngineCore waits for every rank to answer `load_model`; the slow rank never does."""
    while all(w.poll() is None for w in workers):
        time.sleep(0.5)
    os._exit(1)  # a rank died: so does the engine, like vLLM's executor


if __name__ == "__main__":
    try:
        worker_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
    except KeyboardInterrupt:  # the tree's Ctrl-C: a worker leaves quietly, the engine reports
        os._exit(0)
