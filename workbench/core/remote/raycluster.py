"""A running Ray cluster seen through Ray's State API (`ray.util.state`): its nodes, the vLLM
actors and workers, and their output (`get_log`), recognised like a run's log.

Ray is optional (`pip install 'vllm-workbench[ray]'`); without it the one-line reason says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from workbench.core.knowledge.analyze import analyze_text
from workbench.core.knowledge.diagnosis import Recogniser

# the actor classes vLLM runs on Ray (executor workers, DP engine cores, the API's engine)
VLLM_ACTOR = re.compile(r"RayWorkerWrapper|RayWorkerProc|DPEngineCoreActor|EngineCore|vllm|LLMEngine", re.IGNORECASE)
NOT_INSTALLED = "Ray is not installed here: pip install 'vllm-workbench[ray]' (or 'ray[default]')"


class RayUnavailable(Exception):
    """No Ray, or no cluster at the address: one line for the user."""


def _state() -> Any:
    try:
        from ray.util import state
    except ImportError:
        raise RayUnavailable(NOT_INSTALLED) from None
    return state


@dataclass
class RayActorRun:
    """A vLLM actor shown like a run."""

    actor_id: str
    class_name: str
    state: str
    pid: int | None
    node_id: str
    node_ip: str
    name: str = ""
    log: list[str] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"actor_id": self.actor_id, "class_name": self.class_name, "state": self.state, "pid": self.pid,
                "node_id": self.node_id, "node_ip": self.node_ip, "name": self.name, "log_tail": self.log[-50:],
                **{k: self.analysis.get(k) for k in ("verdict", "root_cause", "phases", "last_phase", "findings")}}


@dataclass
class RayView:
    nodes: list[dict[str, Any]]
    actors: list[RayActorRun]
    workers: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "actors": [a.to_dict() for a in self.actors], "workers": self.workers}


def _plain(item: Any) -> dict[str, Any]:
    return dict(item) if isinstance(item, dict) else {k: v for k, v in vars(item).items() if not k.startswith("_")}


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Ray's C++ client logs its connection retries straight to fd 2; our one line says it all."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _call(func: Any, **kwargs: Any) -> Any:
    try:
        with _quiet_native_stderr():
            return func(**kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for "no cluster there"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayUnavailable(f"cannot read the Ray cluster at {kwargs.get('address') or 'auto'}: {text}") from None


def actor_log(address: str | None, actor_id: str, follow: bool = False, tail: int = 2000) -> Iterator[str]:
    """The actor's output lines (stdout, then stderr with follow off); follow streams new ones."""
    state = _state()
    suffixes = ("out",) if follow else ("out", "err")
    for suffix in suffixes:
        try:
            chunks = state.get_log(address=address, actor_id=actor_id, follow=follow, tail=tail, suffix=suffix,
                                   errors="replace", timeout=30)
            for chunk in chunks:
                yield from chunk.splitlines()
        except Exception as exc:  # noqa: BLE001 - a log Ray has not written yet is not fatal
            if follow:
                raise RayUnavailable(f"cannot follow the log of actor {actor_id}: {exc}") from None


def read_cluster(address: str | None, recogniser: Recogniser, everything: bool = False,
                 tail: int = 2000) -> RayView:
    """Nodes, the vLLM actors (all actors with `everything`) with their recognised logs, workers."""
    state = _state()
    nodes = [_plain(n) for n in _call(state.list_nodes, address=address, limit=10_000)]
    ips = {n.get("node_id"): n.get("node_ip") for n in nodes}
    actors = []
    for raw in _call(state.list_actors, address=address, limit=10_000, detail=True):
        item = _plain(raw)
        class_name = str(item.get("class_name") or "")
        if not everything and not VLLM_ACTOR.search(class_name):
            continue
        run = RayActorRun(str(item.get("actor_id")), class_name, str(item.get("state")), item.get("pid"),
                          str(item.get("node_id") or ""), str(ips.get(item.get("node_id")) or ""),
                          str(item.get("name") or ""))
        run.log = list(actor_log(address, run.actor_id, tail=tail))
        run.analysis = analyze_text("\n".join(run.log) + "\n", recogniser, source=f"actor {run.actor_id}").to_dict()
        actors.append(run)
    workers = [{k: w.get(k) for k in ("worker_id", "pid", "node_id", "ip", "worker_type", "is_alive")}
               for w in map(_plain, _call(state.list_workers, address=address, limit=10_000))]
    return RayView(nodes, actors, workers)
