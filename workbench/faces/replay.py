"""Replaying recipes headless: one run, the isolation matrix, and bisecting a numeric limit.

Runs go one after another (the accelerator and the port are exclusive). Each is a normal
headless run with its own session, so everything it printed is on disk afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from workbench.core.engine.facade import EngineFacade
from workbench.core.engine.run import Run
from workbench.core.engine.settings import Settings
from workbench.core.knowledge import verdicts as V
from workbench.core.knowledge.signatures import KnowledgeBase
from workbench.core.record.recipe import Recipe, SmokeRequest
from workbench.faces.abload import conclude, load_cells, load_on, load_row
from workbench.faces.headless import HeadlessOptions, run_headless

EXIT_MISMATCH = 20  # the outcome differs from the recipe's `expect`
GRAPH_OFF = ("--enforce-eager", "TORCHDYNAMO_DISABLE")


class RecipeError(Exception):
    """A recipe that cannot be replayed here (a missing secret, a bad variant name)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def outcome_matches(expect: str, result: dict[str, Any]) -> bool:
    """`expect` is a verdict (healthy, failed, hung, false-ready, exited) or a finding id."""
    if expect in V.EXIT_CODES:
        return result.get("verdict") == expect
    root = (result.get("root_cause") or {}).get("id")
    return root == expect or any(f.get("id") == expect and not f.get("cascade") for f in result.get("findings", []))


def send_smoke(url: str, model: str, smoke: SmokeRequest, timeout: float = 120.0) -> dict[str, Any]:
    body = json.loads(json.dumps(smoke.body).replace("{model}", model)) if smoke.body else {
        "model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}
    body.setdefault("model", model)
    try:
        response = httpx.post(url.rstrip("/") + smoke.endpoint, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        return {"name": smoke.name or smoke.endpoint, "ok": False, "status": None, "error": f"{type(exc).__name__}: {exc}"}
    ok = response.status_code == smoke.expect_status and (not smoke.expect_text or smoke.expect_text in response.text)
    return {"name": smoke.name or smoke.endpoint, "ok": ok, "status": response.status_code,
            "error": "" if ok else response.text[:300]}


@dataclass
class Attempt:
    variant: str  # "base" or a variant name
    change: str
    result: dict[str, Any]
    matched: bool = False
    smokes: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, Any] | None = None  # the recipe's [load] on this run, when it became healthy

    @property
    def healthy(self) -> bool:
        return self.result.get("verdict") == V.HEALTHY

    def row(self) -> dict[str, Any]:
        return {"variant": self.variant, "change": self.change, "verdict": self.result.get("verdict"),
                "phase": self.result.get("last_phase"), "root_cause": (self.result.get("root_cause") or {}).get("id"),
                "seconds": self.result.get("seconds"), "session": self.result.get("session_dir"),
                **(load_row(self.load) if self.load is not None else {})}


def recipe_smokes(recipe: Recipe, run: Run, outcomes: list[dict[str, Any]]) -> str | None:
    """Send the recipe's smoke requests to a ready run, in order, into `outcomes`; the first
    failure, said in one line, or None."""
    for smoke in recipe.smoke:
        outcome = send_smoke(run.ready_url or "", run.model_id, smoke)
        outcomes.append(outcome)
        if not outcome["ok"]:
            return f"smoke {outcome['name']} failed: {outcome['status']} {outcome['error'][:120]}"
    return None


def recipe_settings(recipe: Recipe, settings: Settings) -> Settings:
    """The settings with the recipe's own timeouts."""
    settings = copy.copy(settings)
    if recipe.startup_timeout is not None:
        settings.startup_timeout = float(recipe.startup_timeout)
    if recipe.stall_window is not None:
        settings.stall_window = float(recipe.stall_window)
    return settings


def check_replayable(recipe: Recipe, variant: str | None = None) -> None:
    missing = recipe.missing_env()
    if missing:
        raise RecipeError(f"{recipe.path or recipe.name}: set {', '.join(missing)} in the environment "
                          "(recipes never hold secrets)")
    if variant is not None and variant not in recipe.variants:
        raise RecipeError(f"{recipe.path or recipe.name}: no variant {variant!r} "
                          f"(known: {', '.join(recipe.variants) or 'none'})")


def replay_once(recipe: Recipe, settings: Settings, kb: KnowledgeBase, variant: str | None = None,
                set_args: dict[str, str] | None = None, port: int | None = None, quiet: bool = True,
                stream: TextIO | None = None, session_dir: str | None = None, python: str | None = None) -> Attempt:
    check_replayable(recipe, variant)
    argv, env, cwd = recipe.resolve(variant, port if port is not None else free_port(), python=python)
    change = recipe.variants[variant].label() if variant else ""
    if set_args:
        from workbench.core.cmdline import apply_arg_delta

        argv = apply_arg_delta(argv, dict(set_args))
        change = " ".join(f"{k} {v}" for k, v in set_args.items())
    settings = recipe_settings(recipe, settings)
    captured: dict[str, Any] = {}
    smokes: list[dict[str, Any]] = []
    loads: list[dict[str, Any] | None] = []

    def on_healthy(run: Run) -> str | None:
        failure = recipe_smokes(recipe, run, smokes)
        if failure is None and recipe.load:
            loads.append(load_on(recipe, run.ready_url or "", run.model_id))
        return failure

    options = HeadlessOptions(quiet=quiet, env_delta=env, cwd=cwd, session_dir=session_dir,
                              on_healthy=on_healthy if recipe.smoke or recipe.load else None,
                              result_sink=captured.update)
    sink = stream if stream is not None else io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        run_headless(argv, options, settings, kb)
    result = captured or {"verdict": None, "reason": "not launched (preflight)", "findings": []}
    attempt = Attempt(variant or ("probe" if set_args else "base"), change, result, smokes=smokes,
                      load=loads[0] if loads else None)
    attempt.matched = outcome_matches(recipe.expect, result)
    return attempt


def matrix_conclusion(attempts: list[Attempt]) -> str:
    base, variants = attempts[0], attempts[1:]
    passing = [a for a in variants if a.healthy]
    failing = [a for a in variants if not a.healthy]
    cause = (base.result.get("root_cause") or {}).get("id") or base.result.get("verdict")
    if base.healthy and not failing:
        return "healthy in every variant: nothing to isolate"
    if base.healthy:
        return "base is healthy; fails with " + " and with ".join(a.change or a.variant for a in failing)
    if not passing:
        causes = sorted({(a.result.get("root_cause") or {}).get("id") or str(a.result.get("verdict")) for a in attempts})
        return f"fails in every variant ({', '.join(causes)}): none of these changes avoids it"
    fixes = " and with ".join(a.change or a.variant for a in passing)
    if all(any(flag in a.change for flag in GRAPH_OFF) for a in passing) and any(
            any(flag in a.change for flag in GRAPH_OFF) for a in passing):
        return f"fails in graph mode only ({cause}); passes with {fixes} → a compile/capture issue"
    return f"fails as is ({cause}); passes with {fixes}"


def run_matrix(recipe: Recipe, settings: Settings, kb: KnowledgeBase,
               progress: Callable[[Attempt], None] | None = None, python: str | None = None) -> tuple[list[Attempt], str]:
    attempts = []
    for variant in [None, *recipe.variants]:
        attempt = replay_once(recipe, settings, kb, variant, python=python)
        attempts.append(attempt)
        if progress:
            progress(attempt)
    return attempts, conclude(recipe, attempts, matrix_conclusion(attempts))


def run_matrix_on_engine(engine: EngineFacade, recipe: Recipe, python: str | None = None,
                         on_launch: Callable[[Run], None] | None = None,
                         on_attempt: Callable[[list[Attempt]], None] | None = None,
                         cancelled: Callable[[], bool] = lambda: False, poll: float = 0.2) -> tuple[list[Attempt], str]:
    """The isolation matrix through an engine a face already has, so every run stays in its
    session and on screen: launch, wait for the verdict, the recipe's smokes, stop, next."""
    check_replayable(recipe)
    attempts: list[Attempt] = []
    for variant in [None, *recipe.variants]:
        if cancelled():
            break
        argv, env, cwd = recipe.resolve(variant, free_port(), python=python)
        name = variant or "base"
        run = engine.launch(argv, env, cwd, label=name, cause=f"matrix: {name}")
        if on_launch:
            on_launch(run)
        while run.verdict is None and not cancelled():
            time.sleep(poll)
        result = run.summary()
        smokes: list[dict[str, Any]] = []
        failure = recipe_smokes(recipe, run, smokes) if run.verdict == V.HEALTHY else None
        if failure:
            result["verdict"], result["reason"] = V.FALSE_READY, failure
        load = load_on(recipe, run.ready_url or "", run.model_id) if run.verdict == V.HEALTHY and not failure else None
        if run.alive:
            engine.stop(run.id, cause="matrix: next variant")
        attempt = Attempt(name, recipe.variants[variant].label() if variant else "", result, smokes=smokes, load=load)
        attempt.matched = outcome_matches(recipe.expect, result)
        attempts.append(attempt)
        if on_attempt:
            on_attempt(list(attempts))
    return attempts, conclude(recipe, attempts, matrix_conclusion(attempts)) if attempts else "cancelled"


def parse_range(text: str) -> tuple[float, float, bool]:
    low, sep, high = text.partition("..")
    if not sep:
        raise ValueError(f"range {text!r}: write LOW..HIGH, e.g. 1024..32768")
    is_int = low.strip().lstrip("-").isdigit() and high.strip().lstrip("-").isdigit()
    lo, hi = float(low), float(high)
    if lo >= hi:
        raise ValueError(f"range {text!r}: LOW must be below HIGH")
    return lo, hi, is_int


def bisect_limit(recipe: Recipe, settings: Settings, kb: KnowledgeBase, flag: str, low: float, high: float,
                 is_int: bool, step: float | None = None, progress: Callable[[Attempt], None] | None = None,
                 python: str | None = None) -> tuple[float | None, list[Attempt]]:
    """The largest value of `flag` in [low, high] that still reaches a healthy verdict (assuming
    healthy below some limit and not above it)."""
    step = step or (1 if is_int else (high - low) / 64)

    def show(value: float) -> str:
        return str(int(value)) if is_int else f"{value:g}"

    probes: list[Attempt] = []

    def healthy(value: float) -> bool:
        attempt = replay_once(recipe, settings, kb, set_args={flag: show(value)}, python=python)
        probes.append(attempt)
        if progress:
            progress(attempt)
        return attempt.healthy

    if not healthy(low):
        return None, probes
    if healthy(high):
        return high, probes
    lo, hi = low, high  # healthy at lo, not at hi
    while hi - lo > step:
        mid = lo + (hi - lo) / 2
        if is_int:
            mid = lo + max(step, round((mid - lo) / step) * step)
            if mid >= hi:
                break
        if healthy(mid):
            lo = mid
        else:
            hi = mid
    return lo, probes


def attempts_table(attempts: list[Attempt]) -> str:
    rows = [a.row() for a in attempts]
    head = ("variant", "change", "phase reached", "verdict", "root cause", "seconds")
    cells = [(r["variant"], r["change"] or "-", str(r["phase"]), str(r["verdict"]), str(r["root_cause"] or "-"),
              f"{r['seconds'] or 0:.1f}") for r in rows]
    if any(a.load is not None for a in attempts):  # the recipe has [load]: throughput columns
        head += ("out tok/s", "TTFT p50", "TTFT p99")
        cells = [(*cell, *load_cells(a.load)) for cell, a in zip(cells, attempts, strict=True)]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines) + "\n"


def print_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
