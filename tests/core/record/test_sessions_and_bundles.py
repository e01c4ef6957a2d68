"""Sessions on disk: listed, reloaded as read-only runs, bundled for a bug report with no secret inside."""

from __future__ import annotations

import sys
import tarfile

import pytest

from tests.helpers import free_port, workbench
from workbench.core.engine.recorded import list_sessions, load_dumps, load_runs, resolve_session
from workbench.core.engine.settings import Settings
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import load_knowledge_base
from workbench.core.record.bundle import bundle_session, issue_markdown, scrub_secrets

HF = "hf_abcdefghijklmnopqrstuvwx"
API_KEY = "sk-workbench-test-0123456789"


@pytest.fixture
def failed_session(tmp_path, state_dir):
    """A real headless run of the simulator that fails (KV cache too small), with secrets around it."""
    session = state_dir / "sessions" / "kv-session"
    result = workbench(
        "run", "--headless", "--quiet", "--session-dir", str(session), "--env", f"HF_TOKEN={HF}", "--",
        sys.executable, "-m", "workbench.sim", "kv-cache-too-small", "--port", str(free_port()),
        "--time-scale", "0.05", "--api-key", API_KEY,
    )
    assert result.returncode == 10, result.stderr
    return session


def test_sessions_list_and_resolve(failed_session, state_dir) -> None:
    found = list_sessions(failed_session.parent)
    assert [s.path for s in found] == [failed_session]
    assert found[0].runs == [("r1", "failed")]
    assert resolve_session(str(failed_session)) == failed_session
    with pytest.raises(FileNotFoundError):
        resolve_session("no-such-session", failed_session.parent)


def test_recorded_runs_come_back_with_their_findings(failed_session) -> None:
    runs = load_runs(failed_session, Recogniser(load_knowledge_base()), Settings())
    assert len(runs) == 1
    run = runs[0]
    assert run.verdict == "failed" and not run.alive and run.recorded
    assert run.root_cause().id == "kv_cache_too_small"
    assert len(run.store) > 10
    assert load_dumps(run.dir) == []


def test_bundle_has_issue_md_and_no_secret_in_any_file(failed_session, tmp_path) -> None:
    out = bundle_session(failed_session, tmp_path / "bug.tar.gz")
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(out) as archive:
        names = archive.getnames()
        contents = {name: archive.extractfile(name).read() for name in names if archive.getmember(name).isfile()}
    assert any(n.endswith("ISSUE.md") for n in names) and any(n.endswith("runs/r1/output.log") for n in names)
    for name, data in contents.items():
        assert HF.encode() not in data and API_KEY.encode() not in data, name
    issue = next(data for name, data in contents.items() if name.endswith("ISSUE.md")).decode()
    for heading in ("### Your current environment", "### 🐛 Describe the bug", "### Expected behaviour"):
        assert heading in issue
    assert "kv_cache_too_small" in issue and "workbench.sim kv-cache-too-small" in issue
    assert "--api-key ***" in issue


def test_session_files_hold_no_secret(failed_session) -> None:
    for path in failed_session.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert HF.encode() not in data, path
            assert oct(path.stat().st_mode & 0o777) == "0o600", path


def test_scrub_patterns() -> None:
    text = "non-default args: {'api_key': 'abc123456', 'model': 'm'} --api-key zzz999 HF_TOKEN=hf_x hf_" + "a" * 20
    scrubbed = scrub_secrets(text)
    assert "abc123456" not in scrubbed and "zzz999" not in scrubbed and "hf_" + "a" * 20 not in scrubbed
    assert "'model': 'm'" in scrubbed


def test_issue_markdown_without_env_report(failed_session) -> None:
    (failed_session / "env.json").unlink(missing_ok=True)
    assert "workbench env" in issue_markdown(failed_session)


def test_cli_sessions_bundle_env(failed_session, tmp_path) -> None:
    listed = workbench("sessions")
    assert listed.returncode == 0 and "kv-session" in listed.stdout and "r1:failed" in listed.stdout
    bundled = workbench("bundle", str(failed_session), "-o", str(tmp_path / "b.tar.gz"))
    assert bundled.returncode == 0 and (tmp_path / "b.tar.gz").exists()
    missing = workbench("bundle", "definitely-not-a-session")
    assert missing.returncode == 2 and "no session" in missing.stderr and "Traceback" not in missing.stderr
    env = workbench("env", "--json", "--", sys.executable, "-m", "vllm")
    assert env.returncode == 0 and '"target_python"' in env.stdout
