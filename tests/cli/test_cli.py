"""Bad input gets one clear line and a non-zero exit, never a traceback; analyze on logs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import workbench

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def test_unreadable_log_is_a_clear_error(tmp_path) -> None:
    done = workbench("analyze", str(tmp_path / "missing.log"))
    assert done.returncode == 2 and "no such file" in done.stderr and "Traceback" not in done.stderr
    locked = tmp_path / "locked.log"
    locked.write_text("x\n")
    done = workbench("analyze", str(tmp_path))
    assert done.returncode == 2 and "not a session" in done.stderr


def test_malformed_signature_file_names_file_line_and_key(tmp_path) -> None:
    bad = tmp_path / "team.toml"
    bad.write_text('schema = 1\n[[signature]]\nid = "x"\ntitle = "t"\nseverity = "loud"\npatterns = ["boom"]\nwhy = "w"\n')
    done = workbench("analyze", "--signatures", str(tmp_path), str(FIXTURES / "v0.11-cuda-oom.log"))
    assert done.returncode == 2
    assert f"{bad}:5: [severity]" in done.stderr and "Traceback" not in done.stderr
    run = workbench("run", "--headless", "--signatures", str(tmp_path), "--", "true")
    assert run.returncode == 2 and "[severity]" in run.stderr


def test_usage_errors() -> None:
    assert workbench("run", "--headless").returncode == 2
    done = workbench("analyze")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_signatures_list_and_test() -> None:
    listed = workbench("signatures")
    assert listed.returncode == 0 and "cuda_oom" in listed.stdout and "hccl_bind" in listed.stdout
    hits = workbench("signatures", "test", str(FIXTURES / "v0.11-cuda-oom.log"))
    assert "cuda_oom" in hits.stdout and "phase:loading" in hits.stdout


EXPECTED = {
    "v0.7-healthy.log": (None, "ready", "healthy"),
    "v0.11-healthy.log": (None, "serving", "healthy"),
    "v0.32-healthy.log": (None, "ready", "healthy"),
    "v0.11-cuda-oom.log": ("cuda_oom", "loading", "failed"),
    "v0.11-kv-cache.log": ("kv_cache_too_small", "kv_cache", "failed"),
    "v0.32-unknown-exception.log": ("unrecognised_error", "loading", "failed"),
    "ascend-acl-graph.log": ("acl_graph_capture", "graph_capture", "failed"),
}


def test_analyze_names_the_root_cause_of_every_fixture() -> None:
    for name, (root, phase, verdict) in EXPECTED.items():
        done = workbench("analyze", "--json", str(FIXTURES / name))
        result = json.loads(done.stdout)
        assert (result["root_cause"] or {}).get("id") == root, name
        assert result["last_phase"] == phase, name
        assert result["verdict"] == verdict, name
        if root is None:
            assert not [f for f in result["findings"] if f["severity"] == "error" and not f["benign"]], name


def test_analyze_kv_cache_fixture_fills_the_max_model_len_action() -> None:
    result = json.loads(workbench("analyze", "--json", str(FIXTURES / "v0.11-kv-cache.log")).stdout)
    assert result["root_cause"]["actions"][0]["arg_delta"] == {"--max-model-len": "12288"}


def test_a_reader_that_leaves_early_is_not_a_traceback() -> None:
    import subprocess
    import sys

    # `workbench signatures | head -1`: the pipe closes while we are still writing
    done = subprocess.run(f"{sys.executable} -m workbench signatures test {FIXTURES / 'every-signature.log'} | head -1",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_signatures_test_takes_the_option_before_the_log(tmp_path) -> None:
    (tmp_path / "team.toml").write_text('schema = 1\n[[signature]]\nid = "team_marker"\ntitle = "t"\n'
                                        'severity = "warning"\npatterns = ["KV cache memory"]\nwhy = "w"\n')
    log = str(FIXTURES / "v0.11-kv-cache.log")
    for args in (("--signatures", str(tmp_path), log), (log, "--signatures", str(tmp_path))):
        done = workbench("signatures", "test", *args)
        assert done.returncode == 0 and "team_marker" in done.stdout, done.stderr
    assert workbench("signatures", "test", log, "--bogus").returncode == 2
