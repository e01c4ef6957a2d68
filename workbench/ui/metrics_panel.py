"""Performance in the TUI: a metrics panel of sparklines per run, the header's one-line summary,
a load burst and vLLM's profiler on the focused run.

Scrapes run in a thread worker every POLL_S seconds, only for runs that are serving and shown;
where /metrics cannot be read, the stats lines of the run's log stand in (rates only).
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from typing import Any

import httpx
from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from workbench.core.probes.bottleneck import devices, find_bottleneck
from workbench.core.probes.load import LoadSpec, run_load
from workbench.core.probes.metrics import (
    TOTAL,
    MetricsError,
    MetricsWindow,
    derived_from_stats_lines,
    ms,
    scrape,
    summary_line,
)

POLL_S = 5.0  # each scrape is a line in the server's access log: not more often than the watcher
HISTORY = 60  # points per sparkline (two minutes at POLL_S)
SERIES = (("generation_tps", "tokens/s (generation)"), ("running", "running"), ("waiting", "waiting"),
          ("kv_usage", "KV cache usage"), ("ttft_p50", "TTFT p50"), ("ttft_p99", "TTFT p99"))
PROFILER_SECONDS = 10.0
BURST = LoadSpec(concurrency=8, requests=32, prompt_tokens=128, max_tokens=64)


def series_value(derived: dict[str, Any], key: str) -> float:
    total = derived.get(TOTAL, {})
    if key.startswith("ttft_"):
        return float((total.get("ttft") or {}).get(key[5:]) or 0.0)
    return float(total.get(key) or 0.0)


def caption(key: str, title: str, derived: dict[str, Any] | None) -> str:
    if not derived:
        return f"{title}: -"
    value = series_value(derived, key)
    if key == "kv_usage":
        shown = f"{value * 100:.1f}%"
    elif key.startswith("ttft"):
        shown = ms(value) if (derived.get(TOTAL) or {}).get("ttft") else "-"
    else:
        shown = f"{value:.1f}" if key.endswith("tps") else f"{value:.0f}"
    return f"{title}: [b]{shown}[/b]"


def vllm_version(run: Any) -> str | None:
    """The server's version from its banner ("vLLM API server version 0.11.0", "version 0.32.0")."""
    for line in run.store.lines(0, min(len(run.store), 200)):
        if match := re.search(r"version (\d+\.\d+[\w.]*)", line):
            return match.group(1)
    return None


class MetricsPanel(Vertical):
    """Sparklines of one run's numbers; `show` takes the run's history of derived snapshots."""

    DEFAULT_CSS = """
    MetricsPanel { height: auto; }
    MetricsPanel Sparkline { height: 1; margin-bottom: 0; }
    MetricsPanel .metrics-caption { height: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("[b]Metrics[/b]", classes="metrics-title")
        for key, title in SERIES:
            yield Static(f"{title}: -", classes="metrics-caption", id=f"cap-{key}")
            yield Sparkline([], id=f"spark-{key}")

    def show(self, history: list[dict[str, Any]], source: str = "") -> None:
        latest = history[-1] if history else None
        title = "[b]Metrics[/b]" + (f" [dim]({escape(source)})[/dim]" if source else "")
        if latest and latest.get("bottleneck"):
            title += "\n" + escape(latest["bottleneck"])
        self.query_one(".metrics-title", Static).update(title if history else title + "\n[i]not serving yet[/i]")
        for key, title_text in SERIES:
            self.query_one(f"#cap-{key}", Static).update(caption(key, title_text, latest))
            self.query_one(f"#spark-{key}", Sparkline).data = [series_value(d, key) for d in history] or [0.0]


class PerfActions:
    """Mixed into the app: the metrics poll, the load burst (b) and the server profiler (T)."""

    def start_metrics(self) -> None:
        self.metric_windows: dict[str, MetricsWindow] = {}
        self.metric_history: dict[str, deque] = {}
        self.metric_source: dict[str, str] = {}
        self.metrics_client = httpx.Client()  # one for every scrape (a new one builds an SSL context)
        self.set_interval(POLL_S, self.poll_metrics)  # type: ignore[attr-defined]

    def serving_runs(self) -> list[Any]:
        shown = {p.run_id for p in self.panes if p.run_id}  # type: ignore[attr-defined]
        return [r for r in (self.engine.runs.get(i) for i in shown) if r is not None and r.alive and r.ready_url]  # type: ignore[attr-defined]

    def poll_metrics(self) -> None:
        runs = self.serving_runs()
        if runs:
            self.scrape_in_worker(runs)

    @work(thread=True, exclusive=True, exit_on_error=False, group="metrics")
    def scrape_in_worker(self, runs: list[Any]) -> None:
        for run in runs:
            window = self.metric_windows.setdefault(run.id, MetricsWindow(30.0))
            try:
                window.add(scrape(run.ready_url, self.metrics_client, timeout=POLL_S))
                derived, source = window.derived(), "/metrics"
            except MetricsError:
                lines = [line for line in run.store.lines(max(0, len(run.store) - 200), len(run.store))
                         if "Avg prompt throughput" in line]
                derived, source = derived_from_stats_lines(lines), "stats line"
            if derived is None:
                continue
            tree = {f"{p.name}[{p.pid}]": p.cpu_percent for p in run.tree_snapshot} or None
            derived["bottleneck"] = find_bottleneck(derived, devices()[0], tree).text()
            self.metric_history.setdefault(run.id, deque(maxlen=HISTORY)).append(derived)
            self.metric_source[run.id] = source
        self.call_from_thread(self.show_metrics)  # type: ignore[attr-defined]

    def metrics_summary(self, run_id: str) -> str:
        history = self.metric_history.get(run_id) if hasattr(self, "metric_history") else None
        return summary_line(history[-1]) if history else ""

    def show_metrics(self) -> None:
        for pane in self.panes:  # type: ignore[attr-defined]
            history = list(self.metric_history.get(pane.run_id or "", []))
            for panel in pane.query(MetricsPanel):
                panel.show(history, self.metric_source.get(pane.run_id or "", ""))

    # -- the load burst ------------------------------------------------------------------------

    def action_load_burst(self) -> None:
        run = self.current_run()  # type: ignore[attr-defined]
        if run is None or not run.ready_url or not run.alive:
            self.note("load: the focused run is not serving")  # type: ignore[attr-defined]
            return
        self.note(f"load: {BURST.requests} requests, {BURST.concurrency} at a time, on {run.id} …")  # type: ignore[attr-defined]
        self.load_in_worker(run)

    @work(thread=True, exit_on_error=False, group="load")
    def load_in_worker(self, run: Any) -> None:
        spec = LoadSpec(**vars(BURST))
        try:
            report = run_load(run.ready_url, spec, model=run.model_id or None)
        except MetricsError as exc:
            self.call_from_thread(self.note, f"load on {run.id} refused: {exc}")  # type: ignore[attr-defined]
            return
        text = (f"load on {run.id}: {report['completed']} ok, {report['failed']} failed, "
                f"{report['output_throughput']:.1f} output tok/s, {report['request_throughput']:.2f} req/s, "
                f"TTFT p50 {report['median_ttft_ms']:.0f}ms p99 {report['p99_ttft_ms']:.0f}ms, "
                f"ITL p50 {report['median_itl_ms']:.0f}ms")
        session = getattr(self.engine, "session", None)  # type: ignore[attr-defined]
        if session is not None:  # the full report beside the run; the line in the timeline
            session.write_text(f"runs/{run.id}/load-{time.strftime('%H%M%S')}.json", json.dumps(report, indent=1))
        if hasattr(self.engine, "notice"):  # type: ignore[attr-defined]
            self.engine.notice(run.id, text)  # type: ignore[attr-defined]
        else:
            self.call_from_thread(self.note, text)  # type: ignore[attr-defined]

    # -- vLLM's profiler -----------------------------------------------------------------------

    def offer_profiler_relaunch(self, run: Any) -> None:
        from workbench.core.probes.torchprof import relaunch_delta
        from workbench.ui.screens import ConfirmScreen

        trace_dir = str(run.dir / "traces")
        args, env = relaunch_delta(vllm_version(run), trace_dir)
        change = " ".join([*(f"{k} '{v}'" for k, v in args.items()), *(f"{k}={v}" for k, v in env.items())])

        def answered(yes: bool | None) -> None:
            if yes:
                self.relaunch_in_worker_with(run.id, env, args)

        self.push_screen(ConfirmScreen(f"The profiler is off on {run.id}. Relaunch with {change}?"), answered)  # type: ignore[attr-defined]

    @work(thread=True, exit_on_error=False, group="relaunch")
    def relaunch_in_worker_with(self, run_id: str, env: dict[str, str], args: dict[str, str]) -> None:
        old = self.engine.runs.get(run_id)  # type: ignore[attr-defined]
        merged = {**(old.spec.env_delta if old else {}), **env}
        new = self.engine.relaunch(run_id, merged, dict(args), cause="relaunch: enable the profiler")  # type: ignore[attr-defined]
        self.call_from_thread(self.place_run, new, self.focus_index)  # type: ignore[attr-defined]

    def action_profile_server(self) -> None:
        run = self.current_run()  # type: ignore[attr-defined]
        if run is None or not run.ready_url or not run.alive:
            self.note("profiler: the focused run is not serving")  # type: ignore[attr-defined]
            return
        self.profile_server_in_worker(run)

    @work(thread=True, exit_on_error=False, group="torchprof")
    def profile_server_in_worker(self, run: Any) -> None:
        from workbench.core.cmdline import flag_value
        from workbench.core.probes.torchprof import ProfilerError, profile_server

        trace_dir = run.spec.env_delta.get("VLLM_TORCH_PROFILER_DIR")
        config = flag_value(run.spec.argv, "--profiler-config")
        if config:
            try:
                trace_dir = json.loads(config).get("torch_profiler_dir") or trace_dir
            except ValueError:
                pass

        def progress(text: str) -> None:
            self.call_from_thread(self.note, f"profiler on {run.id}: {text}")  # type: ignore[attr-defined]

        try:
            result = profile_server(run.ready_url, PROFILER_SECONDS, trace_dir, progress, version=vllm_version(run))
        except (ProfilerError, MetricsError) as exc:
            progress(str(exc))
            if "not enabled" in str(exc):
                self.call_from_thread(self.offer_profiler_relaunch, run)  # type: ignore[attr-defined]
            return
        progress(f"trace at {result['trace']}" if result["trace"] else f"stopped; {result['note']}")
