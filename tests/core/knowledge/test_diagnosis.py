"""Root cause, cascades, folded tracebacks and benign warnings, on hand-written logs."""

from pathlib import Path

import pytest

from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.records import UNRECOGNISED, parse_record
from workbench.core.knowledge.signatures import load_knowledge_base

KB = '''schema = 1
[[signature]]
id = "cuda_oom"
title = "CUDA out of memory"
severity = "error"
patterns = ['OutOfMemoryError: CUDA out of memory']
why = "x"
[[signature]]
id = "engine_init_failed"
title = "Engine core initialization failed"
severity = "error"
cascade = true
patterns = ['Engine core initialization failed', 'EngineCore failed to start']
why = "x"
[[signature]]
id = "too_long"
title = "max_model_len too large"
severity = "error"
patterns = ['User-specified max_model_len \\((?P<n>\\d+)\\) is greater']
why = "x"
[[signature]]
id = "shm_wait"
title = "shm wait"
severity = "warning"
benign_during = ["compiling"]
progress = false
patterns = ['No available shared memory broadcast block found']
why = "x"
[[phase]]
name = "loading"
patterns = ['Starting to load model']
[[phase]]
name = "compiling"
patterns = ['torch.compile']
[[phase]]
name = "ready"
patterns = ['Application startup complete']
'''

E = "(EngineCore_DP0 pid=9) ERROR 11-23 17:02:10 [core.py:1512] "


@pytest.fixture(scope="module")
def recogniser(tmp_path_factory) -> Recogniser:
    d = tmp_path_factory.mktemp("kb")
    (d / "kb.toml").write_text(KB)
    return Recogniser(load_knowledge_base([d], include_user=False, include_builtin=False))


def lines(*items: str) -> str:
    return "\n".join(items) + "\n"


def test_record_parsing_handles_every_generation() -> None:
    assert parse_record("(EngineCore_DP0 pid=9) ERROR 11-23 17:02:10 [core.py:1] boom")[::3] == ("EngineCore_DP0 pid=9", "boom")
    assert parse_record("INFO 10-07 22:54:57 model_runner.py:1014] hi")[1:] == ("INFO", "10-07 22:54:57", "hi")
    assert parse_record("INFO:     Application startup complete.")[3] == "INFO:     Application startup complete."


def test_cascade_loses_to_the_earlier_unknown_exception(recogniser) -> None:
    log = lines(
        "(EngineCore_DP0 pid=9) INFO 11-23 17:02:05 [x.py:1] Starting to load model m",
        E + "EngineCore failed to start.",
        E + "Traceback (most recent call last):",
        E + '  File "/v/core.py", line 1, in run',
        E + "ZeroDivisionError: division by zero",
        "Traceback (most recent call last):",
        '  File "/v/api.py", line 3, in <module>',
        "RuntimeError: Engine core initialization failed. See root cause above.",
    )
    result = analyze_text(log, recogniser).to_dict()
    assert result["root_cause"]["id"] == UNRECOGNISED
    assert result["root_cause"]["title"] == "ZeroDivisionError: division by zero"
    assert result["verdict"] == "failed"
    ids = {f["id"] for f in result["findings"]}
    assert {"engine_init_failed", UNRECOGNISED} <= ids


def test_known_error_wins_and_traceback_is_one_finding(recogniser) -> None:
    log = lines(
        E + "Traceback (most recent call last):",
        E + '  File "/v/worker.py", line 1, in load',
        E + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB.",
        "RuntimeError: Engine core initialization failed.",
    )
    result = analyze_text(log, recogniser).to_dict()
    assert result["root_cause"]["id"] == "cuda_oom"
    assert "Tried to allocate" in result["root_cause"]["line"]
    assert not [f for f in result["findings"] if f["id"] == UNRECOGNISED]


def test_exception_detail_on_the_next_line_is_the_same_error(recogniser) -> None:
    log = lines(
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
        "  Value error, User-specified max_model_len (99999) is greater than the derived max_model_len",
    )
    result = analyze_text(log, recogniser).to_dict()
    assert result["root_cause"]["id"] == "too_long"
    assert [f["id"] for f in result["findings"]] == ["too_long"]


def test_only_cascades_still_name_a_root_cause(recogniser) -> None:
    result = analyze_text(lines("RuntimeError: Engine core initialization failed."), recogniser).to_dict()
    assert result["root_cause"]["id"] == "engine_init_failed"


def test_shm_wait_is_benign_while_compiling_only(recogniser) -> None:
    benign = analyze_text(lines("x torch.compile", "INFO No available shared memory broadcast block found in 60 s"), recogniser)
    assert benign.diagnosis.findings["shm_wait"].benign
    scary = analyze_text(lines("INFO No available shared memory broadcast block found in 60 s"), recogniser)
    assert not scary.diagnosis.findings["shm_wait"].benign


def test_keyboard_interrupt_is_never_a_root_cause(recogniser) -> None:
    log = lines("Traceback (most recent call last):", '  File "x", line 1', "KeyboardInterrupt")
    assert analyze_text(log, recogniser).to_dict()["root_cause"] is None


def test_healthy_log_with_ready_is_healthy_and_phase_times_come_from_the_log(recogniser) -> None:
    log = lines(
        "(EngineCore_DP0 pid=9) INFO 11-23 17:02:05 [x.py:1] Starting to load model m",
        "(EngineCore_DP0 pid=9) INFO 11-23 17:02:15 [x.py:1] torch.compile takes 3 s",
        "INFO:     Application startup complete.",
    )
    result = analyze_text(log, recogniser).to_dict()
    assert result["verdict"] == "healthy" and result["root_cause"] is None
    names = [p["name"] for p in result["phases"]]
    assert names == ["starting", "loading", "compiling", "ready"]
    assert result["phases"][1]["seconds"] == 10.0


def test_error_after_ready_is_false_ready(recogniser) -> None:
    log = lines(
        "INFO:     Application startup complete.",
        E + "torch.OutOfMemoryError: CUDA out of memory.",
    )
    assert analyze_text(log, recogniser).to_dict()["verdict"] == "false-ready"


def test_errors_after_our_stop_are_not_the_root_cause(recogniser) -> None:
    from workbench.core.knowledge.diagnosis import Diagnosis

    diag = Diagnosis(recogniser)
    diag.feed(0, ["INFO fine"], now=0.0)
    diag.mark_stop(1)
    diag.feed(1, ["RuntimeError: Engine core initialization failed."], now=1.0)
    diag.finish()
    assert diag.root_cause() is None


def test_fixture_dir_exists() -> None:
    assert Path(__file__).parent.is_dir()


def test_a_signature_on_a_traceback_source_line_is_not_the_finding_line(recogniser) -> None:
    log = lines(
        "Traceback (most recent call last):",
        '  File "/v/engine/utils.py", line 691, in wait_for_engine_startup',
        '    raise RuntimeError("Engine core initialization failed. "',
        "RuntimeError: Engine core initialization failed. See root cause above.",
    )
    root = analyze_text(log, recogniser).to_dict()["root_cause"]
    assert root["id"] == "engine_init_failed" and root["line"].startswith("RuntimeError: Engine core")


def test_an_exception_that_continues_the_one_above_is_one_finding(recogniser) -> None:
    log = lines(
        E + "Traceback (most recent call last):",
        E + '  File "/t/output_graph.py", line 1, in _call_user_compiler',
        E + "torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:",
        E + "CalledProcessError: Command '['gcc']' returned non-zero exit status 1.",
    )
    result = analyze_text(log, recogniser).to_dict()
    assert [f["title"] for f in result["findings"]] == ["torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised:"]


def test_a_bare_exception_line_is_an_exception(recogniser) -> None:
    result = analyze_text(lines("Traceback (most recent call last):", "Exception: worker gone"), recogniser).to_dict()
    assert result["root_cause"]["title"] == "Exception: worker gone"


def test_on_one_line_the_platform_specific_signature_wins(tmp_path) -> None:
    # the generic signature is loaded first, so insertion order alone would pick it
    (tmp_path / "a.toml").write_text(
        "schema = 1\n[[signature]]\nid = 'generic'\ntitle = 'g'\nseverity = 'error'\n"
        "patterns = ['TorchRuntimeError']\nwhy = 'x'\n"
    )
    (tmp_path / "b.toml").write_text(
        "schema = 1\n[[signature]]\nid = 'npu_specific'\ntitle = 's'\nseverity = 'error'\nplatform = 'ascend'\n"
        "patterns = ['NPU contiguous operator']\nwhy = 'x'\n"
    )
    rec = Recogniser(load_knowledge_base([tmp_path], include_user=False, include_builtin=False))
    log = lines("torch._dynamo.exc.TorchRuntimeError: got RuntimeError('NPU contiguous operator only supported')")
    assert analyze_text(log, rec).to_dict()["root_cause"]["id"] == "npu_specific"
