"""Side panels as text: the process tree with and without device memory per PID."""

from __future__ import annotations

from types import SimpleNamespace

from workbench.core.process.procs import ProcInfo
from workbench.ui.panels import tree_text

TREE = [ProcInfo(10, 1, "python", "vllm serve m", "sleeping", 3.0, 2**30, 12, 0),
        ProcInfo(11, 10, "VLLM::EngineCore", "", "running", 99.0, 2**31, 130, 1)]


def test_tree_shows_device_memory_per_pid_when_nvml_answers() -> None:
    text = tree_text(SimpleNamespace(tree_snapshot=TREE, alive=True), {11: 30 * 2**30})
    assert "GPU MiB" in text
    engine_row = next(line for line in text.splitlines() if "VLLM::EngineCore" in line)
    assert "30720" in engine_row and "130" in engine_row


def test_tree_without_nvml_has_no_device_column() -> None:
    text = tree_text(SimpleNamespace(tree_snapshot=TREE, alive=True), {})
    assert "GPU MiB" not in text and "VLLM::EngineCore" in text
    assert "no live processes" in tree_text(SimpleNamespace(tree_snapshot=[], alive=True), None)


def test_a_dead_runs_tree_lists_no_pids() -> None:
    text = tree_text(SimpleNamespace(tree_snapshot=TREE, alive=False), {})
    assert "the run ended" in text and "sleeping" not in text and "VLLM::EngineCore" not in text
