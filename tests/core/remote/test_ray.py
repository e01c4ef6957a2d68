"""`workbench attach-ray` against a local Ray head started by the test, with a vLLM-style actor.

Skips with the reason when Ray is not installed (it is the optional extra `[ray]`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import free_port, wait_until

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vllm-workbench[ray]'); attach-ray untested")

MARK = "WORKBENCH_TEST_RAY"

DRIVER = textwrap.dedent('''
    import os, sys
    import ray
    ray.init(address=sys.argv[1], namespace="workbench-test", log_to_driver=False)

    @ray.remote(num_cpus=0)
    class RayWorkerWrapper:  # the class name vLLM's Ray executor gives its workers
        def start(self) -> int:
            print("INFO 12-04 19:09:37 [gpu_worker.py:104] Starting to load model tiny on rank 1", flush=True)
            print("ERROR 12-04 19:09:38 [worker_base.py:620] torch.OutOfMemoryError: CUDA out of memory. "
                  "Tried to allocate 2.00 GiB", flush=True)
            return os.getpid()

    actor = RayWorkerWrapper.options(name="vllm-rank-1", lifetime="detached").remote()
    print(ray.get(actor.start.remote()))
''')


def _ray_processes(mark: str, port: int) -> list[psutil.Process]:
    """Our head's processes: they carry our mark, or (Ray's agents) name our GCS port."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.environ().get(MARK) == mark or any(f":{port}" in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    # Ray's agents rename themselves and drop the environment: they share the daemons' group
    groups = {os.getpgid(p.pid) for p in found if p.is_running()} - {os.getpgid(0)}
    for proc in psutil.process_iter():
        try:
            if proc not in found and os.getpgid(proc.pid) in groups:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[str]:
    """A Ray head on loopback; every process it starts carries our mark and is stopped by PID."""
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK: mark, "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    temp = Path("/tmp") / f"wb-ray-{mark[:8]}"  # Ray's socket paths must stay short
    started = subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--dashboard-port", str(free_port()), "--dashboard-host", "127.0.0.1",
         "--include-dashboard", "true", "--temp-dir", str(temp), "--num-cpus", "1", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180, start_new_session=True)  # its own group
    try:
        if started.returncode != 0:
            pytest.skip(f"a local Ray head would not start: {started.stderr.strip().splitlines()[-1:]}")
        yield f"127.0.0.1:{port}"
    finally:
        procs = _ray_processes(mark, port)
        for proc in procs:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _gone, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        subprocess.run(["rm", "-rf", str(temp)], check=False)


def test_attach_ray_lists_a_vllm_actor_and_recognises_its_log(ray_head: str, tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    subprocess.run([sys.executable, str(driver), ray_head], check=True, capture_output=True, timeout=120,
                   env={**os.environ, MARK: _mark_of(ray_head)})
    seen: dict = {}

    def listed() -> bool:
        done = subprocess.run([sys.executable, "-m", "workbench", "attach-ray", ray_head, "--json"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        view = json.loads(done.stdout)
        actors = [a for a in view["actors"] if a["class_name"] == "RayWorkerWrapper"]
        seen.update(view=view, actors=actors)
        return bool(actors) and any("CUDA out of memory" in line for line in actors[0]["log_tail"])

    wait_until(listed, timeout=90, interval=1.0, what="the actor and its log in attach-ray")
    actor = seen["actors"][0]
    assert actor["state"] == "ALIVE" and actor["pid"]
    assert actor["node_ip"] in {n["node_ip"] for n in seen["view"]["nodes"]}
    assert actor["root_cause"]["id"] == "cuda_oom"
    assert seen["view"]["nodes"] and seen["view"]["workers"]
    text = subprocess.run([sys.executable, "-m", "workbench", "attach-ray", ray_head], capture_output=True,
                          text=True, timeout=120).stdout
    assert "RayWorkerWrapper" in text and "root cause: CUDA out of memory" in text


def _mark_of(address: str) -> str:
    """The driver joins the cluster's processes: give it the head's mark so it is cleaned up too."""
    port = address.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        if any(port in part for part in proc.info["cmdline"] or []):
            try:
                mark = proc.environ().get(MARK)
            except psutil.Error:
                continue
            if mark:
                return mark
    return ""
