"""Promise 6: secrets are masked on screen and never written to the session, its recipes,
events, env report or bundle; session directories are 0700 and files 0600."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from tests.reliability.children import BACKSTOP, wait_until, write_script
from workbench.core.secrets import mask_argv, mask_env

SECRETS = {
    "HF_TOKEN": "hf_SeCrEt0000000000000001",
    "OPENAI_API_KEY": "sk-SeCrEt0000000000000002",
    "MY_SERVICE_SECRET": "SeCrEt0000000000000003",
    "DB_PASSWORD_FILE_CONTENT": "SeCrEt0000000000000004",
    "GITHUB_TOKEN": "ghp_SeCrEt0000000000000005",
}
ARG_SECRET = "SeCrEt-arg-0000000000000006"
ARG_SECRET_EQ = "SeCrEt-arg-eq-000000000000007"
ALL = [*SECRETS.values(), ARG_SECRET, ARG_SECRET_EQ]

# a server-like tree: the root and a child both carry the secret arguments in their argv
CHILD = r"""
import subprocess, sys, time
if "--child" not in sys.argv:
    subprocess.Popen([sys.executable, __file__, "--child", *sys.argv[1:]])
print("serving", flush=True)
time.sleep(60)
"""


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*")]


def leaks_in(data: bytes) -> list[str]:
    return [s for s in ALL if s.encode() in data]


def test_masking_helpers_cover_the_names_and_flags() -> None:
    masked = mask_env({**SECRETS, "TOKENIZERS_PARALLELISM": "false", "VLLM_KEYBOARD": "x"})
    assert all(masked[k] == "***" for k in SECRETS)
    assert masked["TOKENIZERS_PARALLELISM"] == "false" and masked["VLLM_KEYBOARD"] == "x"
    argv = mask_argv(["vllm", "serve", "m", "--api-key", ARG_SECRET, f"--api-key={ARG_SECRET_EQ}"])
    assert ARG_SECRET not in argv and not any(ARG_SECRET_EQ in a for a in argv)


def test_no_secret_in_any_file_of_a_session_its_recipe_and_its_bundle(tmp_path: Path, no_leaks) -> None:
    child = write_script(tmp_path, "server.py", CHILD)
    session = tmp_path / "session"
    env = {**os.environ, **SECRETS}
    wb = subprocess.Popen(
        [sys.executable, "-m", "workbench", "run", "--headless", "--no-smoke", "--session-dir", str(session),
         "--", sys.executable, str(child), "--api-key", ARG_SECRET, f"--api-key={ARG_SECRET_EQ}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
    )
    try:
        assert wait_until(lambda: (session / "runs" / "r1" / "output.log").exists()
                          and b"serving" in (session / "runs" / "r1" / "output.log").read_bytes(), BACKSTOP)
        assert wait_until(lambda: (session / "env.json").exists(), BACKSTOP)
        time.sleep(1.5)  # the watcher samples the process tree (cmdlines with the secrets)
        wb.send_signal(signal.SIGINT)
        out, err = wb.communicate(timeout=60)
    finally:
        wb.kill()
    screen = out + err
    assert not leaks_in(screen), "a secret was printed"
    recipe = tmp_path / "recipe.toml"
    rec = subprocess.run([sys.executable, "-m", "workbench", "record", "--session", str(session), "-o", str(recipe)],
                         capture_output=True, env=env, timeout=60)
    assert rec.returncode == 0, rec.stderr
    bundle = tmp_path / "bundle.tar.gz"
    bun = subprocess.run([sys.executable, "-m", "workbench", "bundle", str(session), "-o", str(bundle)],
                         capture_output=True, env=env, timeout=60)
    assert bun.returncode == 0, bun.stderr
    assert not leaks_in(rec.stdout + rec.stderr + bun.stdout + bun.stderr)

    scanned: dict[str, list[str]] = {}
    for path in [*files_under(session), recipe, bundle]:
        if path.is_file():
            scanned[str(path)] = leaks_in(path.read_bytes())
    with tarfile.open(bundle) as tar:
        members = tar.getmembers()
        for member in members:
            if member.isfile():
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                scanned[f"{bundle}:{member.name}"] = leaks_in(data)
    leaked = {name: found for name, found in scanned.items() if found}
    assert not leaked, f"secrets written to: {leaked}"
    assert len(scanned) >= 8  # events, env report, recipe, summary, result, log... were all looked at
    assert any(name.endswith("events.jsonl") for name in scanned) and any(name.endswith("env.json") for name in scanned)

    # permissions: every directory 0700, every file 0600 (the session, and the bundle we wrote)
    wrong = []
    for path in [session, *files_under(session), bundle]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            wrong.append((str(path), oct(mode)))
    assert not wrong, f"wrong modes: {wrong}"
    # and nothing in the archive is readable by others once unpacked
    assert all(m.mode & 0o077 == 0 for m in members), [(m.name, oct(m.mode)) for m in members if m.mode & 0o077]
