"""The fix offered first fits the phase the run failed in; a port suggestion is a free port."""

from __future__ import annotations

import socket

import pytest

from workbench.core.knowledge.actions import concrete, first_fitting, ordered_actions
from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.diagnosis import Recogniser
from workbench.core.knowledge.signatures import Action, load_knowledge_base

P = "(EngineCore_DP0 pid=9444) "
OOM = P + "ERROR 12-04 10:00:09 [core.py:708] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB."
START = [P + "INFO 12-04 10:00:01 [gpu_model_runner.py:2602] Starting to load model m..."]
CAPTURE = [*START, P + "INFO 12-04 10:00:05 [gpu_worker.py:298] Available KV cache memory: 1.00 GiB",
           P + "Capturing CUDA graphs (decode, FULL):  50%|█████     | 4/8"]
PORT = "(APIServer pid=9) ERROR 12-04 10:00:20 [api_server.py:1] OSError: [Errno 98] Address already in use"


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser(load_knowledge_base(include_user=False))


def root_of(recogniser: Recogniser, lines: list[str]):
    analysis = analyze_text("\n".join(lines) + "\n", recogniser)
    return analysis.diagnosis.root_cause(), analysis.to_dict()


def test_oom_in_graph_capture_offers_enforce_eager_first_and_a_applies_it(recogniser) -> None:
    root, result = root_of(recogniser, [*CAPTURE, OOM])
    assert root.id == "cuda_oom" and root.phase == "graph_capture"
    assert root.actions[0].arg_delta == {"--enforce-eager": True}
    assert root.actions[-1].arg_delta.get("--max-model-len")  # cannot help before the KV cache matters
    assert first_fitting(root.actions, ["vllm", "serve", "m"]).arg_delta == {"--enforce-eager": True}
    # the analyze JSON carries the same order
    assert result["root_cause"]["actions"][0]["arg_delta"] == {"--enforce-eager": True}
    # already eager: the first fitting action is the next one, not a no-op
    assert first_fitting(root.actions, ["vllm", "serve", "m", "--enforce-eager"]).arg_delta != {"--enforce-eager": True}


def test_oom_while_loading_offers_a_smaller_model_first_never_the_context(recogniser) -> None:
    root, _ = root_of(recogniser, [*START, OOM])
    assert root.phase == "loading"
    assert "quantized" in root.actions[0].text
    assert "--max-model-len" in root.actions[-1].arg_delta
    applied = first_fitting(root.actions, ["vllm", "serve", "m"])
    assert applied is not None and "--max-model-len" not in applied.arg_delta


def test_port_in_use_suggests_a_port_that_is_free_now(recogniser) -> None:
    root, _ = root_of(recogniser, [PORT])
    applied = first_fitting(root.actions, ["vllm", "serve", "m", "--port", "8000"])
    port = int(applied.arg_delta["--port"])
    assert port not in (8000, 8001)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # free: it binds


def test_order_is_stable_within_a_rank_and_concrete_leaves_plain_actions_alone() -> None:
    a, b = Action("a", {"--x": "1"}), Action("b", {"--y": "1"}, first_in=("loading",))
    c = Action("c", {"--z": "1"}, last_in=("loading",))
    assert [x.text for x in ordered_actions([c, a, b], "loading")] == ["b", "a", "c"]
    assert [x.text for x in ordered_actions([c, a, b], "serving")] == ["c", "a", "b"]
    assert concrete(a) is a
