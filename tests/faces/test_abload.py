"""A/B by throughput: the matrix with [load] on the simulator, and the conclusion's wording."""

from __future__ import annotations

from tests.helpers import workbench
from workbench.core.record.recipe import Recipe, Variant
from workbench.faces.abload import conclude, throughput_conclusion
from workbench.faces.replay import Attempt

SIM = '["{python}", "-m", "workbench.sim", "healthy", "--port", "{port}", "--time-scale", "0.05", "--max-num-seqs", "1"]'


def attempt(name: str, change: str, tps: float | None, ttft: float = 100.0) -> Attempt:
    load = None if tps is None else {"completed": 10, "failed": 0, "output_throughput": tps, "median_ttft_ms": ttft,
                                     "p99_ttft_ms": ttft * 2, "request_throughput": 1.0}
    return Attempt(name, change, {"verdict": "healthy" if tps is not None else "failed"}, load=load)


def test_the_conclusion_names_the_winner_the_size_and_several_changes() -> None:
    recipe = Recipe("r", ["x"], load={"requests": 4}, variants={
        "pc": Variant("pc", add_args=["--enable-prefix-caching"]),
        "two": Variant("two", add_args=["--enforce-eager"], set_args={"--max-num-seqs": "64"})})
    runs = [attempt("base", "", 100.0, 100.0), attempt("pc", "--enable-prefix-caching", 180.0, 60.0),
            attempt("two", "--enforce-eager --max-num-seqs 64", 120.0)]
    text = throughput_conclusion(recipe, runs)
    assert text is not None
    assert text.startswith("--enable-prefix-caching: 1.8\u00d7 output tok/s, TTFT p50 \u221240% vs base")
    assert "two changes more than one variable" in text
    assert conclude(recipe, runs, "healthy in every variant: nothing to isolate").startswith(
        "healthy in every variant; --enable-prefix-caching: 1.8\u00d7")
    slower = [attempt("base", "", 200.0), attempt("pc", "--enable-prefix-caching", 150.0)]
    assert "the base is the fastest" in (throughput_conclusion(recipe, slower) or "")
    assert "fewer than two" in (throughput_conclusion(recipe, [attempt("base", "", 1.0), attempt("pc", "x", None)]) or "")
    assert throughput_conclusion(Recipe("r", ["x"]), runs) is None  # no [load]: the health conclusion alone


def test_matrix_with_load_has_throughput_columns_and_a_winner(tmp_path, state_dir, no_leaks) -> None:
    path = tmp_path / "tp.toml"
    path.write_text(f'name = "tp"\ncommand = {SIM}\n[timeouts]\nstartup = 60\n'
                    "[load]\nconcurrency = 8\nrequests = 16\nprompt_tokens = 32\nmax_tokens = 8\n"
                    '[variants.more-seqs]\nset_args = { "--max-num-seqs" = "16" }\n')
    done = workbench("replay", str(path), "--matrix", "--headless", timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("variant "))
    assert "out tok/s" in header and "TTFT p50" in header and "TTFT p99" in header
    # 8 at once against 1 slot: 16 slots serve them in one batch, clearly faster
    assert "conclusion: healthy in every variant; --max-num-seqs 16: " in done.stdout
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if line.startswith(("base ", "more-seqs "))  and "ms" in line}
    base_tps, more_tps = float(rows["base"][-3]), float(rows["more-seqs"][-3])
    assert 0 < base_tps < more_tps
