"""A/B by throughput: the recipe's `[load]` on every variant that became healthy, and what it says.

The isolation matrix compares variants by whether they start; with `[load]` it also puts the
same bounded load on each healthy one and compares output tokens/s and TTFT, naming the winner
and the size of the difference against the base. A variant that changes more than one thing
is called out: its difference cannot be put on one flag.
"""

from __future__ import annotations

from typing import Any

from workbench.core.probes.load import LoadSpec, run_load
from workbench.core.probes.metrics import MetricsError
from workbench.core.record.recipe import Recipe

MINUS = "\u2212"


def load_spec(recipe: Recipe) -> LoadSpec | None:
    if not recipe.load:
        return None
    fields = dict(recipe.load)
    if "duration" in fields:
        fields.setdefault("requests", None)
    return LoadSpec(**fields)


def load_on(recipe: Recipe, url: str, model: str) -> dict[str, Any] | None:
    """The recipe's load on a ready server: the report, or {"error": ...}; None without [load]."""
    spec = load_spec(recipe)
    if spec is None:
        return None
    try:
        return run_load(url, spec, model=model or None)
    except (MetricsError, OSError) as exc:
        return {"error": str(exc), "completed": 0}


def measured(load: dict[str, Any] | None) -> bool:
    return bool(load) and bool(load.get("completed"))  # type: ignore[union-attr]


def load_cells(load: dict[str, Any] | None) -> tuple[str, str, str]:
    """(output tok/s, TTFT p50, TTFT p99) for the table; '-' where not measured."""
    if not measured(load):
        return "-", "-", "-"
    assert load is not None
    return (f"{load['output_throughput']:.1f}", f"{load['median_ttft_ms']:.0f}ms", f"{load['p99_ttft_ms']:.0f}ms")


def load_row(load: dict[str, Any] | None) -> dict[str, Any]:
    if not measured(load):
        return {"output_tok_s": None, "ttft_p50_ms": None, "ttft_p99_ms": None,
                "load_error": (load or {}).get("error") or ((load or {}).get("errors") or [None])[0]}
    assert load is not None
    return {"output_tok_s": load["output_throughput"], "ttft_p50_ms": load["median_ttft_ms"],
            "ttft_p99_ms": load["p99_ttft_ms"], "request_throughput": load["request_throughput"],
            "failed_requests": load["failed"]}


def _name(attempt: Any) -> str:
    return attempt.change or attempt.variant


def throughput_conclusion(recipe: Recipe, attempts: list[Any]) -> str | None:
    """'--enable-prefix-caching: 1.8× output tok/s, TTFT p50 −40% vs base', or None without loads."""
    runs = [a for a in attempts if measured(a.load)]
    if not recipe.load or not attempts:
        return None
    if len(runs) < 2:
        return "under load: fewer than two variants were measured, nothing to compare"
    base = attempts[0] if attempts[0] in runs else None
    reference = base or min(runs, key=lambda a: a.load["output_throughput"])
    winner = max(runs, key=lambda a: a.load["output_throughput"])
    ref_tps, ref_ttft = reference.load["output_throughput"], reference.load["median_ttft_ms"]
    if winner is reference:
        text = (f"under load the base is the fastest ({ref_tps:.1f} output tok/s, TTFT p50 {ref_ttft:.0f}ms): "
                "no variant beats it")
    else:
        ratio = winner.load["output_throughput"] / ref_tps if ref_tps else float("inf")
        ttft = (winner.load["median_ttft_ms"] - ref_ttft) / ref_ttft * 100 if ref_ttft else 0.0
        sign = MINUS if ttft < 0 else "+"
        text = (f"{_name(winner)}: {ratio:.1f}\u00d7 output tok/s, TTFT p50 {sign}{abs(ttft):.0f}% "
                f"vs {'base' if reference is base else _name(reference)}")
    several = [a.variant for a in runs if a.variant in recipe.variants and recipe.variants[a.variant].changes() > 1]
    if several:
        text += (f"; note: {', '.join(several)} change{'s' if len(several) == 1 else ''} more than one variable "
                 "at once, so the difference cannot be put on one of them")
    return text


def conclude(recipe: Recipe, attempts: list[Any], health: str) -> str:
    """The matrix's health conclusion, with the throughput one where the recipe has [load]."""
    throughput = throughput_conclusion(recipe, attempts)
    if throughput is None:
        return health
    if health.startswith("healthy in every variant"):
        return "healthy in every variant; " + throughput
    return f"{health}; {throughput}"
