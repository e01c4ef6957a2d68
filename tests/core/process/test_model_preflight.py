"""Preflight checks a local model folder the command names: warnings by default, a refusal with
--strict, and the report recorded in the session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.core.knowledge.model_folders import make_folder
from tests.helpers import free_port, workbench
from workbench.core.knowledge import verdicts as V
from workbench.core.process.preflight import run_preflight

SIM = [sys.executable, "-m", "workbench.sim", "healthy"]


def test_folder_findings_warn_and_strict_refuses(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "m")
    argv = [*SIM, "--port", str(free_port()), "--model", str(folder), "--max-model-len", "100000"]
    relaxed = run_preflight(argv, dict(os.environ))
    assert relaxed.ok and any("max_model_len_over_positions" in w for w in relaxed.warnings)
    assert relaxed.model_check["findings"][0]["id"] == "max_model_len_over_positions"
    strict = run_preflight(argv, dict(os.environ), strict=True)
    assert not strict.ok and "max_model_len_over_positions" in strict.problems[0]
    plain = run_preflight([*SIM, "--port", str(free_port()), "--model", "org/remote-name"], dict(os.environ))
    assert plain.model_check is None  # not a local folder: nothing to read


def test_the_report_is_recorded_and_strict_refuses_the_launch(tmp_path: Path, no_leaks: None) -> None:
    folder = make_folder(tmp_path / "m", template=False)
    session = tmp_path / "s"
    argv = [*SIM, "--port", str(free_port()), "--model", str(folder), "--time-scale", "0.05"]
    done = workbench("run", "--headless", "--quiet", "--session-dir", str(session), "--", *argv)
    assert done.returncode == 0 and "model folder: No chat template" in done.stderr
    recorded = json.loads((session / "model_check.json").read_text())
    assert [f["id"] for f in recorded["findings"]] == ["no_chat_template"]
    broken = make_folder(tmp_path / "b", shards=3)
    (broken / "model-00003-of-00003.safetensors").unlink()
    refused = workbench("run", "--headless", "--strict", "--", *SIM, "--port", str(free_port()),
                        "--model", str(broken))
    assert refused.returncode == V.EXIT_PREFLIGHT and "missing_shard" in refused.stderr
