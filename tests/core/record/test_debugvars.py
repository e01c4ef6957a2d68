"""Debug variables as data: cycling values, the user's additions, bad files, the relaunch diff."""

from __future__ import annotations

import pytest

from workbench.core.record.debugvars import DebugVar, env_diff, load_debug_vars
from workbench.core.tomlfile import DataFileError


def test_shipped_variables_cover_the_runbook_ones() -> None:
    names = {v.name for v in load_debug_vars(user=None)}
    assert {"VLLM_LOGGING_LEVEL", "ASCEND_GLOBAL_LOG_LEVEL", "TORCHDYNAMO_DISABLE", "CUDA_LAUNCH_BLOCKING",
            "NCCL_DEBUG", "VLLM_TRACE_FUNCTION", "HCCL_OP_EXPANSION_MODE", "TORCH_LOGS"} <= names
    trace = next(v for v in load_debug_vars() if v.name == "VLLM_TRACE_FUNCTION")
    assert "100x" in trace.guard


def test_cycle_off_values_off() -> None:
    var = DebugVar("NCCL_DEBUG", ("INFO", "TRACE"))
    assert var.next_value(None) == "INFO"
    assert var.next_value("INFO") == "TRACE"
    assert var.next_value("TRACE") is None
    assert var.next_value("WARN") is None  # a value set by hand: the next press turns it off


def test_user_file_adds_and_replaces(tmp_path) -> None:
    user = tmp_path / "debug_vars.toml"
    user.write_text('[vars.MY_FLAG]\nvalues = ["1"]\nwhy = "ours"\n[vars.NCCL_DEBUG]\nvalues = ["WARN"]\n')
    by_name = {v.name: v for v in load_debug_vars(user)}
    assert by_name["MY_FLAG"].why == "ours" and by_name["NCCL_DEBUG"].values == ("WARN",)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('[vars.X]\nvalues = ["1"]\ncolour = "red"\n', 3, "colour"),
        ('[vars.X]\nvalues = "1"\n', 2, "values"),
        ("[vars.X]\nvalues = []\n", 2, "values"),
        ('[switches.X]\nvalues = ["1"]\n', 1, "switches"),
    ],
)
def test_bad_user_file_names_line_and_key(tmp_path, text: str, line: int, key: str) -> None:
    user = tmp_path / "debug_vars.toml"
    user.write_text(text)
    with pytest.raises(DataFileError) as caught:
        load_debug_vars(user)
    assert caught.value.key == key and caught.value.line == line


def test_env_diff_against_the_previous_run() -> None:
    previous = {"A": "1", "B": "x", "C": None}
    pending = {"A": "1", "B": "y", "D": "2"}
    assert env_diff(previous, pending) == ["~B=y", "+D=2"]
    assert env_diff({"A": "1"}, {}) == ["-A"]
