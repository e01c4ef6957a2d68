"""How a process of the tree ended, when it is not our child; which is frozen; what /metrics says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.helpers import wait_until
from workbench.core.engine.liveness import Gone, Liveness, Member, death_sentence, signal_from_log
from workbench.core.probes.serving_metrics import parse_serving_numbers
from workbench.core.process.exits import (
    ExitStatus,
    decode_wait_status,
    exit_watcher,
    process_alive,
    zombie_status,
)
from workbench.core.process.procs import describe, tree

GRANDCHILD = "import subprocess, sys, time\np = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\nprint(p.pid, flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def parent_of_one():
    """A parent that never reaps its child: the child is not ours, like vLLM's engine core."""
    proc = subprocess.Popen([sys.executable, "-c", GRANDCHILD], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    yield proc, child
    proc.kill()
    proc.wait()


def test_wait_statuses_decode_to_code_or_signal() -> None:
    assert decode_wait_status(9) == (None, 9)
    assert decode_wait_status(3 << 8) == (3, None)


def test_a_killed_grandchild_is_seen_with_its_signal(parent_of_one) -> None:
    parent, child = parent_of_one
    watcher = exit_watcher()
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: not process_alive(child), what="the child to die")
    zombie = zombie_status(child)  # its parent does not reap it: the zombie keeps the status
    assert zombie is not None and zombie.signal == 9
    status = watcher.status_of(child, wait=2.0)
    assert status is not None and status.signal == 9 and status.text() == "killed by SIGKILL"
    if watcher.available:
        assert status.source == "kernel"


def test_liveness_names_the_gone_member_and_the_stopped_one(parent_of_one) -> None:
    parent, child = parent_of_one
    liveness = Liveness(parent.pid)
    liveness.observe(describe(tree(parent.pid), parent.pid))
    assert child in liveness.members
    os.kill(child, signal.SIGSTOP)
    wait_until(lambda: liveness.observe(describe(tree(parent.pid), parent.pid)) or liveness.frozen_for(0.0),
               what="the stopped state")
    assert liveness.frozen_for(0.0)[0].state == "T"
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: not process_alive(child), what="the child to die")
    gone = liveness.gone()
    assert [g.member.pid for g in gone] == [child] and gone[0].signal == 9
    assert liveness.gone() == []  # reported once


def test_the_death_sentence_names_process_pid_signal_and_what_to_check() -> None:
    member = Member(16890, "VLLM::EngineCor", "VLLM::EngineCore", 1)
    text = death_sentence(Gone(member, ExitStatus(None, 9, 0.0, "kernel")))
    assert text.startswith("VLLM::EngineCore (PID 16890) killed by SIGKILL at ") and "while serving" in text
    assert "OOM killer" in text and "journalctl -k" in text
    unknown = death_sentence(Gone(member, None))
    assert "exit status was not visible" in unknown and "SIGKILL" not in unknown
    from_log = death_sentence(Gone(member, None), signal_from_log(["Worker proc X died unexpectedly (exit code: -9)"]))
    assert "killed by SIGKILL (vLLM's log says so)" in from_log


def test_serving_numbers_sum_the_gauges_and_read_the_token_counter() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 2.0\n'
        'vllm:num_requests_running{engine="1",model_name="m"} 1.0\n'
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="m"} 4.0\n'
        "# TYPE vllm:generation_tokens_total counter\n"
        'vllm:generation_tokens_total{engine="0",model_name="m"} 17.0\n'
    )
    numbers = parse_serving_numbers(text)
    assert (numbers.running, numbers.waiting, numbers.tokens, numbers.in_flight) == (3.0, 4.0, 17.0, 7.0)
    assert parse_serving_numbers("").tokens is None


def test_verdict_changed_travels_as_json_to_attach_clients() -> None:
    from workbench.core.engine.events import VerdictChanged, event_from_dict

    event = VerdictChanged("r1", verdict="failed", previous="healthy", reason="killed by SIGKILL",
                           root_cause=None, evidence=["GET /health → 503"], elapsed=3.5)
    back = event_from_dict(json.loads(json.dumps(event.to_dict())))
    assert back == event and back.kind == "verdict_changed"


def test_a_member_keeps_the_title_vllm_sets_after_it_was_first_seen() -> None:
    from workbench.core.process.procs import ProcInfo

    liveness = Liveness(None)
    liveness.observe([ProcInfo(7, 1, "VLLM::EngineCor", "python -c from multiprocessing.spawn import spawn_main", "sleeping")])
    liveness.observe([ProcInfo(7, 1, "VLLM::EngineCor", "VLLM::EngineCore", "sleeping")])
    assert liveness.members[7].title == "VLLM::EngineCore"
