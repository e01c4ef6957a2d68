"""The model-folder checks on folders the tests write: each broken folder one finding, a good one none."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.core.knowledge.model_folders import make_folder
from tests.helpers import workbench
from workbench.core.knowledge.modelcheck import ServeOptions, check_folder, model_dir_of

REGISTRY = ["LlamaForCausalLM", "Qwen2ForCausalLM", "DeepseekV3ForCausalLM", "MistralForCausalLM"]


def ids(folder: Path, argv: list[str] | None = None, platform: str = "any", tp: int | None = None) -> list[str]:
    report = check_folder(folder, ServeOptions.from_argv(argv or [], platform=platform, tp=tp), REGISTRY)
    return [f.id for f in report.findings]


def test_a_good_folder_has_no_findings(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "good")
    assert ids(folder, ["--max-model-len", "512", "--tensor-parallel-size", "8"], platform="ascend") == []


def test_unknown_architecture_names_the_nearest(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"architectures": ["LlamaForCausalLMX"]})
    report = check_folder(folder, ServeOptions(), REGISTRY)
    assert [f.id for f in report.findings] == ["unknown_architecture"]
    assert "LlamaForCausalLM" in report.findings[0].why


def test_custom_code_needs_trust_remote_code(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"architectures": ["MyOwnLM"], "auto_map": {"AutoModel": "x.MyOwnLM"}})
    assert ids(folder) == ["needs_trust_remote_code"]
    assert ids(folder, ["--trust-remote-code"]) == []


def test_tp_8_over_4_kv_heads_is_replication(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"num_attention_heads": 32, "num_key_value_heads": 4})
    report = check_folder(folder, ServeOptions(tp=8), REGISTRY)
    assert [f.id for f in report.findings] == ["kv_heads_replicated"]
    assert report.findings[0].actions[0].arg_delta == {"--tensor-parallel-size": "4"}
    assert ids(folder, tp=4) == []
    assert ids(folder, tp=3) == ["tp_heads_indivisible"]


def test_max_model_len_over_positions_and_rope_scaling(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    assert ids(folder, ["--max-model-len", "4k"]) == ["max_model_len_over_positions"]
    scaled = make_folder(tmp_path / "s", {"rope_scaling": {"rope_type": "yarn", "factor": 8.0,
                                                           "original_max_position_embeddings": 512}})
    assert ids(scaled, ["--max-model-len", "4096"]) == []


def test_fp8_on_ascend_only(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"quantization_config": {"quant_method": "fp8", "fmt": "e4m3"}})
    assert ids(folder, platform="ascend") == ["fp8_on_ascend"]
    assert ids(folder, platform="cuda") == []


def test_mtp_in_config_but_not_in_weights(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"num_nextn_predict_layers": 1})
    assert ids(folder) == ["mtp_weights_missing"]
    # DeepSeek-style: the MTP layer is the one after the last decoder layer
    shipped = make_folder(tmp_path / "ok", {"num_nextn_predict_layers": 1},
                          extra_tensors=("model.layers.2.eh_proj.weight",))
    assert ids(shipped) == []


def test_a_missing_shard(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", shards=3)
    (folder / "model-00002-of-00003.safetensors").unlink()
    report = check_folder(folder, ServeOptions(), REGISTRY)
    assert [f.id for f in report.findings] == ["missing_shard"]
    assert "model-00002-of-00003.safetensors" in report.findings[0].why


def test_a_truncated_shard(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    shard = folder / "model-00001-of-00002.safetensors"
    os.truncate(shard, shard.stat().st_size - 10)
    assert ids(folder) == ["truncated_shard"]
    os.truncate(shard, 20)  # the header itself cut short
    assert ids(folder) == ["truncated_shard"]


def test_no_chat_template(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", template=False)
    assert ids(folder) == ["no_chat_template"]
    assert ids(folder, ["--chat-template", "t.jinja"]) == []
    (folder / "chat_template.jinja").write_text("{{ x }}")
    assert ids(folder) == []


def test_vl_models_are_read_through_text_config(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"num_attention_heads": None, "num_key_value_heads": None,
                                          "text_config": {"num_attention_heads": 16, "num_key_value_heads": 2}})
    assert ids(folder, tp=4) == ["kv_heads_replicated"]


def test_a_broken_config_is_one_finding_with_the_line(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    (folder / "config.json").write_text('{\n  "architectures": [\n}')
    report = check_folder(folder, ServeOptions(), REGISTRY)
    assert [f.id for f in report.findings] == ["config_unreadable"]
    assert "line 3" in report.findings[0].why


def test_a_huge_sparse_shard_reads_only_its_header(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", shards=1)
    shard = folder / "model-00001-of-00001.safetensors"
    os.truncate(shard, 100 * 1024**3)  # sparse: larger than the tensors need, never read
    assert ids(folder) == []


def test_model_dir_of_a_serve_command(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    assert model_dir_of(["vllm", "serve", str(folder), "--tp", "2"]) == folder
    assert model_dir_of(["python", "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder)]) == folder
    assert model_dir_of(["vllm", "serve", "Qwen/Qwen3-8B"]) is None


def test_the_cli_reports_and_exits_nonzero_on_errors(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m", {"num_attention_heads": 32, "num_key_value_heads": 4}, template=False)
    done = workbench("model-check", str(folder), "--no-registry", "--json", "--session-dir", str(tmp_path / "s"),
                     "--", "--max-model-len", "100000", "-tp", "8")
    result = json.loads(done.stdout)
    assert sorted(f["id"] for f in result["findings"]) == [
        "kv_heads_replicated", "max_model_len_over_positions", "no_chat_template"]
    assert done.returncode == 1
    assert json.loads((tmp_path / "s" / "model_check.json").read_text())["findings"] == result["findings"]
    text = workbench("model-check", str(folder), "--no-registry", "--tp", "8")
    assert "try 1: Prefer TP 4" in text.stdout


@pytest.mark.parametrize("args, message", [
    (["/no/such/dir"], "no such directory"),
    ([".", "--tp", "0"], "must be 1 or more"),
])
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = workbench("model-check", *args, "--no-registry")
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_a_target_without_vllm_checks_the_files_and_says_why_not_the_registry(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    done = workbench("model-check", str(folder), "--python", sys.executable)
    assert done.returncode == 0 and "no findings" in done.stdout
    assert "registry not asked: ModuleNotFoundError" in done.stdout
