"""The scenarios: where each fails, what it prints, and what makes the failure go away."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Fix = Callable[[dict, dict], bool]  # (options, env) -> the failure does not happen


def _never(_opts: dict, _env: dict) -> bool:
    return False


def _eager(opts: dict, _env: dict) -> bool:
    return bool(opts["enforce_eager"])


@dataclass(frozen=True)
class Failure:
    stage: str  # distributed | loading | compiling | kv_cache | graph_capture | first_request | bind
    exception: str  # the exception line, as Python prints it
    frames: tuple[tuple[str, int, str, str], ...]
    before: tuple[str, ...] = ()  # log records printed just before the traceback
    fixed_by: Fix = _never


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    platform: str = "cuda"
    failure: Failure | None = None
    hang_at: str | None = None
    capture_seconds: float = 3.0
    flood: bool = False
    nasty: bool = False
    hold_port: bool = False
    extra: dict = field(default_factory=dict)


_LOAD_FRAMES = (
    ("v1/engine/core.py", 83, "__init__", "self.model_executor = executor_class(vllm_config)"),
    ("v1/worker/gpu_model_runner.py", 2560, "load_model", "self.model = model_loader.load_model("),
    ("model_executor/model_loader/base_loader.py", 49, "load_model", "model = initialize_model(vllm_config=vllm_config,"),
)
_KV_FRAMES = (
    ("v1/engine/core.py", 92, "__init__", "self._initialize_kv_caches(vllm_config)"),
    ("v1/core/kv_cache_utils.py", 1148, "check_enough_kv_cache_memory", "raise ValueError("),
)
_CAPTURE_FRAMES = (
    ("v1/engine/core.py", 101, "_initialize_kv_caches", "self.model_executor.initialize_from_config(kv_cache_configs)"),
    ("v1/worker/gpu_model_runner.py", 3418, "capture_model", "self._capture_cudagraphs("),
    ("compilation/cuda_graph.py", 191, "__call__", "with torch.cuda.graph(cudagraph, pool=self.graph_pool):"),
)
_COMPILE_FRAMES = (
    ("v1/worker/gpu_model_runner.py", 3020, "profile_run", "hidden_states = self._dummy_run(self.max_num_tokens)"),
    ("compilation/decorators.py", 310, "__call__", "output = self.compiled_callable(*args, **kwargs)"),
)
_EXECUTE_FRAMES = (
    ("v1/engine/core.py", 284, "step", "model_output = self.execute_model_with_error_logging("),
    ("v1/worker/gpu_model_runner.py", 2156, "execute_model", "entry.cudagraph.replay()"),
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("healthy", "starts and serves"),
        Scenario("slow-graph-capture", "CUDA graph capture takes ~25 s with a moving progress bar: progress, not a hang", capture_seconds=25.0),
        Scenario(
            "oom-load", "CUDA out of memory while loading weights (whatever the flags)",
            failure=Failure(
                "loading",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity of 79.19 GiB "
                "of which 1.94 GiB is free. Including non-PyTorch memory, this process has 77.25 GiB memory in use.",
                _LOAD_FRAMES,
            ),
        ),
        Scenario(
            "oom-graph-capture", "CUDA out of memory during graph capture; fine with --enforce-eager",
            failure=Failure("graph_capture", "RuntimeError: CUDA error: out of memory", _CAPTURE_FRAMES, fixed_by=_eager),
        ),
        Scenario(
            "kv-cache-too-small", "KV cache too small for --max-model-len above 8192; fine at 8192 or below",
            failure=Failure(
                "kv_cache",
                "ValueError: To serve at least one request with the models's max seq len ({max_len}), "
                "({need:.2f} GiB KV cache is needed, which is larger than the available KV cache memory (1.00 GiB). "
                "Based on the available memory, the estimated maximum model length is 8192. Try increasing "
                "`gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
                _KV_FRAMES,
                fixed_by=lambda opts, _env: opts["max_model_len"] <= 8192,
            ),
        ),
        Scenario("port-in-use", "a stale process holds --port; the API server's real bind fails", hold_port=True),
        Scenario(
            "false-ready", "ready and answering /v1/models; the first generation kills the engine",
            failure=Failure(
                "first_request",
                "torch.AcceleratorError: CUDA error: an illegal memory access was encountered\n"
                "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.\n"
                "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
                _EXECUTE_FRAMES,
                before=("EngineCore encountered a fatal error.",),
            ),
        ),
        Scenario("hang", "stops printing after distributed init and sits in wait_for_all_reduce", hang_at="distributed"),
        Scenario("tp-hang", "TP=4: rank 1 is still reading its weight shard while ranks 0, 2, 3 wait in all_reduce",
                 hang_at="tp_load", extra={"tp": 4, "slow_rank": 1}),
        Scenario(
            "dynamo-interpolate", "torch.compile of interpolate fails (NPU); fine with TORCHDYNAMO_DISABLE=1 or --enforce-eager",
            platform="ascend",
            failure=Failure(
                "compiling",
                "torch._dynamo.exc.TorchRuntimeError: Dynamo failed to run FX node with fake tensors: call_function "
                "<function interpolate at 0x7f3a>(*(FakeTensor(..., device='npu:0', size=(1, 1280, 24, 24)),), "
                "**{'size': (32, 32), 'mode': 'bicubic'}): got RuntimeError('NPU contiguous operator only supported "
                "contiguous memory format.')",
                _COMPILE_FRAMES,
                fixed_by=lambda opts, env: bool(opts["enforce_eager"]) or env.get("TORCHDYNAMO_DISABLE") == "1",
            ),
        ),
        Scenario(
            "hccl-bind", "HCCL cannot bind its port (a stale server on the NPUs)",
            platform="ascend",
            failure=Failure(
                "distributed",
                "RuntimeError: createHCCLComm:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:NPU function error: "
                "HcclGetRootInfo(&hcclID), error code is 11\n[ERROR] 2025-11-23-17:02:10 (PID:9444, Device:0, RankID:-1) "
                "ERR02200 DIST call hccl api failed.\nEJ0003: [PID: 9444] 2025-11-23-17:02:10.123.456 Failed to bind the IP "
                "port. Reason: The IP address and port have been bound already.",
                (("distributed/parallel_state.py", 1097, "init_distributed_environment", "torch.distributed.init_process_group("),),
                before=("host nic listen start failed, port[60000]",),
            ),
        ),
        Scenario(
            "acl-graph-capture", "ACL graph capture fails; fine with --enforce-eager or HCCL_OP_EXPANSION_MODE=AIV",
            platform="ascend",
            failure=Failure(
                "graph_capture",
                "RuntimeError: AclmdlRICaptureEnd:torch_npu/csrc/core/npu/NPUGraph.cpp:220 NPU function error: "
                "rtStreamEndCapture execution failed, reason=an error has invalidated the stream capture sequence, "
                "error code is 507903",
                (("compilation/acl_graph.py", 175, "__call__", "with torch.npu.graph(aclgraph, pool=self.graph_pool):"),),
                fixed_by=lambda opts, env: bool(opts["enforce_eager"]) or env.get("HCCL_OP_EXPANSION_MODE") == "AIV",
            ),
        ),
        Scenario("log-flood", "healthy, then DEBUG lines at --rate per second while serving", flood=True),
        Scenario("serve-hang", "healthy, then the engine core stops answering from the second request on (idle, not stopped)",
                 hang_at="second_request"),
        Scenario("nasty-output", "escape sequences, invalid UTF-8, NULs, a 1 MB line among a healthy startup", nasty=True),
    ]
}
