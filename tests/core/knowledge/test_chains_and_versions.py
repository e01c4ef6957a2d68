"""pydantic details name the run's own values; installed versions against their pairing."""

from __future__ import annotations

import pytest

from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.chains import name_run_values, validation_detail
from workbench.core.knowledge.diagnosis import Diagnosis, Recogniser
from workbench.core.knowledge.envcheck import version_pairing
from workbench.core.knowledge.signatures import load_knowledge_base

A = "(APIServer pid=7) "
FIELD_ERROR = [
    A + "Traceback (most recent call last):",
    A + '  File "/v/vllm/engine/arg_utils.py", line 1402, in create_engine_config',
    A + "pydantic_core._pydantic_core.ValidationError: 1 validation error for SchedulerConfig",
    A + "max_num_seqs",
    A + "  Input should be greater than or equal to 1 [type=greater_than_equal, input_value=0, input_type=int]",
    A + "    For further information visit https://errors.pydantic.dev/2.11/v/greater_than_equal",
]


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


def feed(recogniser: Recogniser, lines: list[str], **context) -> Diagnosis:
    diagnosis = Diagnosis(recogniser, **context)
    diagnosis.feed(0, lines)
    diagnosis.finish()
    return diagnosis


def test_the_detail_line_is_the_root_and_names_the_field_and_the_flag(recogniser) -> None:
    diagnosis = feed(recogniser, FIELD_ERROR, argv=["vllm", "serve", "m", "--max-num-seqs", "0"])
    root = diagnosis.root_cause()
    assert root.line == FIELD_ERROR[4]
    assert root.title.startswith("SchedulerConfig.max_num_seqs: Input should be greater than or equal to 1")
    assert "'0' is the value of --max-num-seqs in this run" in root.title


def test_without_the_run_nothing_is_named(recogniser) -> None:
    root = feed(recogniser, FIELD_ERROR).root_cause()
    assert root.line == FIELD_ERROR[4] and "in this run" not in root.title


def test_values_come_only_from_the_run() -> None:
    assert name_run_values(["0.00001"], {"VLLM_CPU_KVCACHE_SPACE": "0.00001", "HOME": "0.00001"}, None) == [
        "'0.00001' is the value of VLLM_CPU_KVCACHE_SPACE in this run"]
    assert name_run_values(["8"], None, ["vllm", "serve", "--tensor-parallel-size=8"]) == [
        "'8' is the value of --tensor-parallel-size in this run"]
    assert name_run_values(["8"], {}, ["vllm", "serve", "m"]) == []
    detail = validation_detail("ModelConfig", "  Value error, Sleep mode is not supported on current platform. "
                               "[type=value_error, input_value=ArgsKwargs((), {'model': 'm'}), input_type=ArgsKwargs]", None)
    assert detail is not None and detail.title == "ModelConfig: Sleep mode is not supported on current platform"


def test_a_wait_followed_by_output_is_not_a_hang(recogniser) -> None:
    wait = "(EngineCore_DP0 pid=9) INFO 10-22 09:{:02d}:49 [shm_broadcast.py:466] No available shared memory broadcast block found in 60 seconds."
    serving = "(APIServer pid=1) INFO 10-22 09:00:00 [api_server.py:1] Application startup complete."
    stuck = [serving, *(wait.format(m) for m in range(1, 6))]
    result = analyze_text("\n".join(stuck) + "\n", recogniser).to_dict()
    assert result["verdict"] == "hung" and result["hang"]["seconds"] == 240.0
    assert "waited for 240 s" in result["hang"]["says"]
    moving = [serving, wait.format(1), "(APIServer pid=1) INFO:     10.0.0.1:5 - \"POST /v1/completions HTTP/1.1\" 200 OK",
              "(APIServer pid=1) INFO 10-22 09:02:00 [loggers.py:1] Engine 000: Avg prompt throughput: 10 tokens/s",
              "(APIServer pid=1) INFO 10-22 09:02:10 [loggers.py:1] Engine 000: Avg prompt throughput: 12 tokens/s",
              "(APIServer pid=1) INFO 10-22 09:02:20 [loggers.py:1] Engine 000: Avg prompt throughput: 11 tokens/s",
              wait.format(3)]
    assert analyze_text("\n".join(moving) + "\n", recogniser).to_dict()["verdict"] == "healthy"


def test_installed_versions_against_their_pairing() -> None:
    notes = version_pairing({"vllm": "0.9.2", "torch": "2.8.0", "vllm-ascend": "0.9.1rc1", "torch-npu": "2.5.1.post1"})
    assert notes == [
        "vllm 0.9.2 is built against torch 2.7.1; torch 2.8.0 is installed (undefined symbols in vllm/_C are the usual result)",
        "vllm-ascend 0.9.1rc1 runs on vllm 0.9.1; vllm 0.9.2 is installed",
        "torch-npu 2.5.1.post1 runs on torch 2.5.1; torch 2.8.0 is installed",
    ]
    assert version_pairing({"vllm": "0.11.0", "torch": "2.8.0+cu128"}) == []
    assert version_pairing({"vllm": "0.32.0+cpu", "torch": "2.9.0"}) == []  # not known: not judged


def test_a_recorded_session_gives_its_runs_env_and_argv(recogniser, tmp_path) -> None:
    from pathlib import Path

    from workbench.core.knowledge.analyze import analyze_path

    world = Path(__file__).resolve().parents[2] / "fixtures" / "logs" / "world"
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "output.log").write_bytes((world / "2-cpu-kvcache-space-from-env.log").read_bytes())
    (run / "recipe.toml").write_text('name = "r1"\ncommand = ["vllm", "serve", "m"]\n'
                                     'env = { VLLM_CPU_KVCACHE_SPACE = "0.00001" }\n')
    (tmp_path / "env.json").write_text('{"env": {}}')
    root = analyze_path(str(tmp_path), recogniser)[0].to_dict()["root_cause"]
    assert root["title"].endswith("'0.00001' is the value of VLLM_CPU_KVCACHE_SPACE in this run")
