"""The cascade rule: a cascade is never the root cause while the log holds any other error,
exception, or warning that carries an exception; alone, it says the cause is not in the log.

Five exceptions the knowledge base does not know, each written bare (a plain traceback), inside
records (vLLM logs the traceback line by line under one prefix) and at WARNING (the repr in a
sentence), each followed by each cascade vLLM prints.
"""

from __future__ import annotations

import pytest

from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.rootcause import CAUSE_NOT_IN_LOG
from workbench.core.knowledge.signatures import load_knowledge_base

UNKNOWN = {
    "KeyError": ("KeyError: 'factor'", "KeyError('factor')"),
    "AttributeError": (
        "AttributeError: 'NoneType' object has no attribute 'rope_theta'",
        "AttributeError(\"'NoneType' object has no attribute 'rope_theta'\")",
    ),
    "TypeError": (
        "TypeError: forward() got an unexpected keyword argument 'positions'",
        "TypeError(\"forward() got an unexpected keyword argument 'positions'\")",
    ),
    "IndexError": ("IndexError: list index out of range", "IndexError('list index out of range')"),
    "NotImplementedError": (
        "NotImplementedError: fused_moe_kernel for this dtype",
        "NotImplementedError('fused_moe_kernel for this dtype')",
    ),
}

R = "(EngineCore_DP0 pid=41) ERROR 12-04 03:01:15 [core.py:708] "
CASCADES = {
    "engine_init_failed": [
        "Traceback (most recent call last):",
        '  File "/v/vllm/v1/engine/utils.py", line 964, in wait_for_engine_startup',
        '    raise RuntimeError("Engine core initialization failed. "',
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    ],
    "engine_core_failed_to_start": [R + "EngineCore failed to start."],
    "engine_dead": [
        "(APIServer pid=1) ERROR 12-04 03:01:16 [async_llm.py:480] AsyncLLM output_handler failed.",
        "(APIServer pid=1) vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
        "See stack trace (above) for the root cause.",
    ],
    "worker_proc_failed": [
        R + "Exception: WorkerProc initialization failed due to an exception in a background process. "
        "See stack trace for root cause.",
    ],
    "worker_died": [R + "Worker proc VllmWorker-0 died unexpectedly, shutting down executor."],
    "core_proc_died": [
        "(APIServer pid=1) ERROR 12-04 03:01:16 [core_client.py:564] Engine core proc EngineCore_DP0 "
        "died unexpectedly, shutting down client.",
    ],
}
BANNER = [
    "(APIServer pid=1) INFO 12-04 03:01:00 [api_server.py:1] vLLM API server version 0.11.0",
    "(EngineCore_DP0 pid=41) INFO 12-04 03:01:05 [gpu_model_runner.py:1] Starting to load model /m...",
]


def form(kind: str, exc: str) -> tuple[list[str], str]:
    """The lines of one exception in `kind` form, and the line that must be the root cause."""
    bare_line, repr_text = UNKNOWN[exc]
    if kind == "bare":
        lines = [
            "Traceback (most recent call last):",
            '  File "/v/vllm/model_executor/models/llama.py", line 120, in __init__',
            "    self.rope = get_rope(config)",
            bare_line,
        ]
        return lines, bare_line
    if kind == "in_record":
        lines = [
            R + "EngineCore hit an exception: Traceback (most recent call last):",
            R + '  File "/v/vllm/v1/engine/core.py", line 701, in run_engine_core',
            R + "    engine_core = EngineCoreProc(*args, **kwargs)",
            R + bare_line,
        ]
        return lines, R + bare_line
    warning = f"WARNING 12-04 03:01:10 [_custom_ops.py:11] Failed to set up the kernels with {repr_text}"
    return [warning, "INFO 12-04 03:01:11 [core.py:90] Initializing the engine"], warning


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


@pytest.mark.parametrize("cascade", sorted(CASCADES))
@pytest.mark.parametrize("kind", ["bare", "in_record", "warning"])
@pytest.mark.parametrize("exc", sorted(UNKNOWN))
def test_the_unknown_exception_beats_every_cascade(recogniser, exc: str, kind: str, cascade: str) -> None:
    lines, expected = form(kind, exc)
    log = "\n".join([*BANNER, *lines, *CASCADES[cascade]]) + "\n"
    result = analyze_text(log, recogniser).to_dict()
    root = result["root_cause"]
    assert root is not None and root["line"] == expected, (root, log)
    assert root["id"] == "unrecognised_error"
    assert exc in root["title"]
    assert result["verdict"] == "failed"
    # the cascade is still a finding, and says what it is
    assert any(f["cascade"] for f in result["findings"]), result["findings"]


@pytest.mark.parametrize("cascade", sorted(CASCADES))
def test_a_cascade_alone_says_the_cause_is_not_in_the_log(recogniser, cascade: str) -> None:
    log = "\n".join([*BANNER, *CASCADES[cascade]]) + "\n"
    result = analyze_text(log, recogniser).to_dict()
    root = result["root_cause"]
    assert root is not None, result
    finding = next(f for f in result["findings"] if f["id"] == root["id"])
    assert finding["cascade"] and finding["note"] == CAUSE_NOT_IN_LOG
    assert root["why"].startswith("Only a consequence is in this log")


def test_a_warning_with_an_exception_alone_is_not_a_failure(recogniser) -> None:
    lines, _ = form("warning", "KeyError")
    result = analyze_text("\n".join([*BANNER, *lines]) + "\n", recogniser).to_dict()
    assert result["root_cause"] is None and result["verdict"] == "incomplete"


def quoting_log(quoted: str) -> str:
    return "\n".join([
        *BANNER,
        R + f"RuntimeError: Worker failed with error '{quoted}', please check the stack trace above for the root cause",
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    ]) + "\n"


def test_the_quoted_error_is_the_title(recogniser) -> None:
    quoted = "shape '[2048, 12, 96]' is invalid for input of size 2359296"
    root = analyze_text(quoting_log(quoted), recogniser).to_dict()["root_cause"]
    assert root["id"] == "unrecognised_error" and root["title"] == quoted
    assert root["line"].startswith(R + "RuntimeError: Worker failed")


def test_a_quoted_error_a_signature_knows_is_named_by_it(recogniser) -> None:
    quoted = "vllm.vllm_flash_attn requires the CUDA flash attention extensions to be built"
    root = analyze_text(quoting_log(quoted), recogniser).to_dict()["root_cause"]
    assert root["id"] == "flash_attn_missing"


def test_a_warning_a_signature_calls_benign_does_not_count(recogniser) -> None:
    # on Ascend / CPU hosts vLLM's CUDA extension never loads: harmless, not a cause
    benign = ("WARNING 12-04 03:01:02 [_custom_ops.py:20] Failed to import from vllm._C with "
              "ImportError('libcudart.so.12: cannot open shared object file: No such file or directory')")
    log = "\n".join([*BANNER, benign, *CASCADES["engine_init_failed"]]) + "\n"
    result = analyze_text(log, recogniser).to_dict()
    assert result["root_cause"]["id"] == "engine_init_failed"
    assert any(f["id"] == "vllm_c_cuda_libs_absent" and f["benign"] for f in result["findings"])
