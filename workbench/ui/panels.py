"""What each side panel says about a run, as Rich markup: pure functions of engine state."""

from __future__ import annotations

import time

from rich.markup import escape

from workbench.core.engine.run import Run
from workbench.core.knowledge.actions import first_fitting
from workbench.core.knowledge.envcheck import check_environment
from workbench.core.knowledge.phases import PHASE_TITLES
from workbench.core.knowledge.records import Finding
from workbench.core.probes.stacks import ProcessDump, unmoved_threads
from workbench.core.record.debugvars import DebugVar, env_diff
from workbench.core.secrets import mask_argv, mask_env
from workbench.ui.stuckview import stacks_head

SPINNER = "◐◓◑◒"


# healthy green, failed red, the ones that look alive but are not amber
VERDICT_STYLE = {"healthy": "b green", "failed": "b red", "hung": "b dark_orange", "false-ready": "b dark_orange",
                 "exited": "b magenta", "running": "b", "incomplete": "b dark_orange"}
monotonic = time.monotonic  # the clock "ended N s ago" reads (pinned by the snapshots)


def verdict_markup(verdict: str) -> str:
    return f"[{VERDICT_STYLE.get(verdict, 'b')}]{escape(verdict)}[/]"


def ended_text(run: Run) -> str:
    """How a run that is no longer alive ended: "ended 12 s ago — SIGINT"."""
    ago = max(0.0, monotonic() - run.ended) if run.ended is not None else 0.0
    how = run.stop_signal if run.stop_signal and run.stop_signal != "none" else (
        f"signal {run.exit_signal}" if run.exit_signal else f"exit {run.returncode}")
    return f"[b]ended {ago:.0f} s ago — {escape(how)}[/b]"


def header_text(run: Run, tick: int = 0) -> str:
    """Two rows: the status (always whole: the pane crops, never wraps) and the command."""
    verdict = run.verdict or ("running" if run.alive else "exited")
    shown = verdict_markup(verdict)
    if len(run.history) > 1:  # changed while serving: it must not look like the verdict it replaced
        shown = f"[b red]{escape(verdict.upper())}[/] (was {escape(run.history[-2]['verdict'])})"
    partial = run.store.partial.rstrip()
    prompt = "  [b yellow]debugger prompt waiting (i to type)[/]" if partial.endswith(("(Pdb)", "ipdb>")) else ""
    eager = "  [b]eager[/b]" if "--enforce-eager" in run.spec.argv else ""
    if run.plog_store is not None:
        eager += f"  plog {len(run.plog_store)} lines (P)"
    status = f"[b]{run.id}[/b] verdict {shown}  PID {run.pid}  [b]{PHASE_TITLES[run.phase()]}[/b]  "
    if run.alive:
        cpu = sum(p.cpu_percent for p in run.tree_snapshot)
        rss = sum(p.rss for p in run.tree_snapshot) / 2**30
        status += f"up {run.elapsed():.0f}s  CPU {cpu:.0f}%  RSS {rss:.2f} GiB  procs {len(run.tree_snapshot)}"
    elif run.proc is not None or run.ended is not None:
        status += f"{ended_text(run)}  [dim]ran {run.elapsed():.0f}s[/dim]"
    return f"{status}{eager}{prompt}\n[dim]{escape(' '.join(mask_argv(run.spec.argv)))}[/dim]"


def pinned_text(run: Run) -> str:
    root = run.root_cause()
    banner = ""
    if len(run.history) > 1:
        banner = f"[b red]{escape(run.verdict or '').upper()} while serving:[/] {escape(run.verdict_reason[:240])}"
    if root is None:
        return banner
    return (banner + "\n" if banner else "") + f"[b]root cause[/b] (line {root.first_seq + 1}, {escape(root.title)}): {escape(root.line.strip()[:200])}"


def phases_text(run: Run, tick: int = 0) -> str:
    records = run.diagnosis.phases.to_list(now=run.elapsed())
    lines = ["[b]Phases[/b]"]
    for i, record in enumerate(records):
        current = i == len(records) - 1 and run.alive and run.verdict is None
        mark = SPINNER[tick % len(SPINNER)] if current else "✓"
        lines.append(f"{mark} {PHASE_TITLES[record['name']]:<14} {record['seconds'] or 0:6.1f}s")
    if run.phase() == "graph_capture" and run.alive:
        lines.append("[i]graph capture can take minutes: not a hang[/i]")
    return "\n".join(lines)


def finding_prompt(finding: Finding, is_root: bool, argv: list[str] | None = None, shown: int = 3) -> str:
    """A finding with its top actions in full (they wrap, never cut), in the order that fits the
    phase it failed in; the one `a` applies is marked."""
    tag = " [b red](root cause)[/]" if is_root else (
        " (cascade)" if finding.cascade else (" (benign)" if finding.benign else ""))
    colour = {"error": "red", "warning": "yellow"}.get(finding.severity, "cyan")
    lines = [f"[{colour}]{finding.severity}[/]{tag} [b]{escape(finding.title)}[/b] ×{finding.count}",
             f"  lines {finding.first_seq + 1}–{max(finding.last_seq, finding.first_seq) + 1}, "
             f"in {PHASE_TITLES.get(finding.phase, finding.phase)}"]
    if finding.why:
        lines.append(f"  {escape(finding.why)}")
    applied = first_fitting(finding.actions, argv or [])
    for action in finding.actions[:shown]:
        applies = applied is not None and action.text == applied.text
        lines.append(f"  • {escape(action.text)}" + ("  [b](a applies)[/b]" if applies else ""))
    if len(finding.actions) > shown:
        lines.append(f"  [dim]+{len(finding.actions) - shown} more (workbench analyze lists them all)[/dim]")
    return "\n".join(lines)


def tree_text(run: Run, gpu: dict[int, int] | None = None) -> str:
    rows = ["[b]Process tree[/b]", f"{'PID':>7} {'state':<9}{'CPU%':>6}{'RSS MiB':>9}{'thr':>5}"
            + ("  GPU MiB" if gpu else "") + "  title"]
    if not run.alive:  # a dead run's last sample would list its PIDs as "sleeping"
        return "\n".join([rows[0], "[i]no live processes: the run ended[/i]"])
    for proc in run.tree_snapshot:
        extra = f"{(gpu or {}).get(proc.pid, 0) / 2**20:9.0f}" if gpu else ""
        rows.append(f"{proc.pid:>7} {proc.status:<9}{proc.cpu_percent:6.0f}{proc.rss / 2**20:9.0f}{proc.threads:5d}"
                    f"{extra}  {'  ' * proc.depth}{escape(proc.name)}")
    if not run.tree_snapshot:
        rows.append("[i]no live processes[/i]")
    return "\n".join(rows)


def debug_text(pending: dict[str, str | None], run: Run | None, known: list[DebugVar]) -> str:
    lines = ["[b]Debug variables[/b] (t: toggles, D: DEBUG log; apply with r)"]
    shown = {k: v for k, v in mask_env(pending).items() if v is not None}
    lines.append(escape(", ".join(f"{k}={v}" for k, v in shown.items()) or "none set"))
    if run is not None:
        diff = env_diff(run.spec.env_delta, pending)
        if diff:
            lines.append("[b]next relaunch differs:[/b] " + escape(" ".join(diff)))
    guards = {v.name: v.guard for v in known if v.guard}
    for name in shown:
        if name in guards:
            lines.append(f"[yellow]▲ {name}: {escape(guards[name])}[/]")
    if run is not None:
        env = {k: v for k, v in pending.items() if v is not None}
        for warning in check_environment(run.spec.argv, env):
            if not any(w in warning for w in guards):
                lines.append(f"[yellow]▲ {escape(warning)}[/]")
    return "\n".join(lines)


def _busyness(dump: ProcessDump) -> tuple:
    active = sum(1 for t in dump.threads if t.active)
    return (not dump.ok, -active, -len(dump.threads))


def stacks_text(history: list[list[ProcessDump]], frames: int = 8, stuck: dict | None = None) -> str:
    """Where it is stuck, then the latest dump, grouped by process, busiest first; then what did not
    move since the last one."""
    if not history:
        return "[b]Stacks[/b]\n[i]no dump yet: press d[/i]"
    latest = history[-1]
    lines = [*stacks_head(stuck), f"[b]Stacks[/b] (dump {len(history)})"]
    for dump in sorted(latest, key=_busyness):
        lines.append(f"[b]PID {dump.pid}[/b] {escape(dump.name)}" + (f"  [red]{escape(dump.error)}[/]" if dump.error else ""))
        threads = sorted(dump.threads, key=lambda t: (not t.owns_gil, not t.active))
        for thread in threads:
            state = "GIL" if thread.owns_gil else ("active" if thread.active else "idle")
            lines.append(f"  thread {thread.thread_id} {escape(thread.name or '')} {escape('[' + state + ']')}")
            for frame in thread.frames[:frames]:
                lines.append(f"    {escape(str(frame))}")
    if len(history) > 1:
        same = unmoved_threads(history[-2], latest)
        lines.append(f"[b]did not move since dump {len(history) - 1}:[/b] {len(same)} thread(s)")
        for pid, thread in same:
            lines.append(f"  [yellow]PID {pid} thread {thread.thread_id}: {escape(str(thread.frames[0]))}[/]")
    return "\n".join(lines)


def where_stuck(history: list[list[ProcessDump]]) -> str:
    """The frame the run sits in: a thread that did not move between the last two dumps, else
    the innermost frame of the busiest process's first thread in the latest dump."""
    if len(history) > 1:
        same = unmoved_threads(history[-2], history[-1])
        if same:
            pid, thread = same[0]
            return f"PID {pid} thread {thread.thread_id}: {thread.frames[0]} (did not move between dumps)"
    for dump in sorted(history[-1] if history else [], key=_busyness):
        for thread in dump.threads:
            if thread.frames:
                return f"PID {dump.pid}: {thread.frames[0]}"
    return ""


def hung_text(run: Run, history: list[list[ProcessDump]]) -> str:
    """What the findings panel says about a run that looks alive but is not: why, where it is
    stuck, what to press next. A stuck summary from the hang analysis goes here when it has one."""
    if run.verdict not in ("hung", "false-ready"):
        return ""
    lines = [f"{verdict_markup(run.verdict)} {escape(run.verdict_reason)}"]
    where = where_stuck(history)
    lines.append(f"[b]stuck in[/b] {escape(where)}" if where else "[i]no stack dump yet[/i]")
    lines.append("[b]next[/b]: o shows the stacks · d dumps again (what did not move) · ctrl+n with native frames")
    return "\n".join(lines)
