"""Communication sanity check for multi-GPU/NPU hangs: one all_reduce over Gloo (CPU) and over
NCCL/HCCL (the device) on every rank, each with a timeout, so a broken fabric fails loudly
instead of hanging the server. Run it the way vLLM's workers are run:

    torchrun --nproc-per-node 2 recipes/comm_check.py
"""

from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(seconds=int(os.environ.get("COMM_CHECK_TIMEOUT", "60")))


def all_reduce_once(backend: str, device: torch.device) -> None:
    group = dist.new_group(backend=backend, timeout=TIMEOUT)
    value = torch.ones(1024, device=device) * (dist.get_rank() + 1)
    dist.all_reduce(value, group=group)
    expected = sum(range(1, dist.get_world_size() + 1))
    if not torch.allclose(value.cpu(), torch.full((1024,), float(expected))):
        raise RuntimeError(f"{backend}: all_reduce gave {value[0].item()}, expected {expected}")
    print(f"rank {dist.get_rank()}: {backend} all_reduce ok ({dist.get_world_size()} ranks)", flush=True)


def main() -> int:
    dist.init_process_group(backend="gloo", timeout=TIMEOUT)
    rank = dist.get_rank()
    all_reduce_once("gloo", torch.device("cpu"))
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        all_reduce_once("nccl", torch.device("cuda", local))
    elif hasattr(torch, "npu") and torch.npu.is_available():  # torch_npu registers it
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.npu.set_device(local)
        all_reduce_once("hccl", torch.device("npu", local))
    else:
        print(f"rank {rank}: no CUDA or NPU device: checked Gloo only", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    if rank == 0:
        print("comm check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
