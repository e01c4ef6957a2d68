"""Where a tree is stuck, read from the stacks of all its processes (one dump, or two in a row).

Pure: it takes py-spy dumps (and what the caller sampled: each process's state and CPU) and says
per process its role, state and the innermost frames that matter, classifies what each waits in,
groups identical stacks across ranks and names the odd one out first. An idle serving loop is
normal and said so; it is not "stuck".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.core.knowledge.stackrules import StackClass, StackRules, load_rules
from workbench.core.probes.procfacts import ProcFacts
from workbench.core.probes.stacks import Frame, ProcessDump, ThreadStack

STATE_NAMES = {"running": "R", "sleeping": "S", "disk-sleep": "D", "stopped": "T", "tracing-stop": "t",
               "zombie": "Z", "idle": "I", "dead": "X"}
SHOWN_FRAMES = 3  # innermost frames that matter, shown outer → inner
COMM_HINT = ("a communication problem (a peer that never joined, a network or device link): rerun with "
             "NCCL_DEBUG=INFO (Ascend: the HCCL logs, ASCEND_GLOBAL_LOG_LEVEL=1) or the `comm-check` recipe")


@dataclass
class ThreadView:
    thread_id: int
    name: str
    active: bool
    owns_gil: bool
    frames: list[Frame]  # the innermost frames that matter, innermost first
    cls: StackClass | None
    moved: bool | None = None  # None: no earlier dump to compare with

    @property
    def top(self) -> str:
        return str(self.frames[0]) if self.frames else "?"

    @property
    def path(self) -> str:
        """`outer → inner (file:line)`, the way people say where a thread is."""
        if not self.frames:
            return "?"
        names = " → ".join(f.name.rsplit(".", 1)[-1] for f in reversed(self.frames))
        return f"{names} ({self.frames[0].filename.rsplit('/', 1)[-1]}:{self.frames[0].line})"


@dataclass
class ProcessView:
    pid: int
    role: str  # API server | EngineCore | Worker | process
    label: str  # EngineCore_DP0, Worker_TP1, API server
    rank: str  # TP1 / PP0_TP1 / DP0, or the label
    state: str  # R S D T ... or ""
    cpu_percent: float | None
    error: str
    threads: list[ThreadView] = field(default_factory=list)
    main: ThreadView | None = None  # the thread that says what the process does
    compiler: bool = False  # a compiler subprocess (no Python stack): the tree is compiling
    cmdline: str = ""

    @property
    def stopped(self) -> bool:
        return self.state in ("T", "t")

    @property
    def classification(self) -> str:
        if self.stopped:
            return "stopped"
        if self.compiler:
            return "compiling"
        if self.error:
            return "not_dumpable"
        return self.main.cls.id if self.main and self.main.cls else "running"

    @property
    def title(self) -> str:
        if self.stopped:
            return f"stopped (state {self.state}: SIGSTOP or a debugger holds it)"
        if self.compiler:
            return "compiling (a compiler subprocess)"
        if self.error:
            return f"not dumpable ({self.error})"
        if self.main and self.main.cls:
            return self.main.cls.title
        return "running Python" if self.main and self.main.owns_gil else "running"

    @property
    def stuck(self) -> bool:
        if self.classification in ("stopped", "compiling") or self.state == "D":
            return True
        if self.error:
            return False
        return bool(self.main and self.main.cls and self.main.cls.stuck)

    def key(self) -> tuple:
        """Processes with the same key are in the same place (grouped across ranks)."""
        frame = self.main.frames[0] if self.main and self.main.frames else None
        return (self.classification, (frame.name, frame.filename, frame.line) if frame else None)

    def where(self) -> str:
        disk = " (state D: in the kernel, waiting for I/O)" if self.state == "D" else ""
        if self.stopped or self.error or not self.main:
            return self.title + disk
        return f"{self.title}: {self.main.path}{disk}"

    def to_dict(self) -> dict:
        return {
            "pid": self.pid, "role": self.role, "label": self.label, "state": self.state,
            "cpu_percent": self.cpu_percent, "classification": self.classification, "title": self.title,
            "top_frame": self.main.top if self.main else None, "frames": self.main.path if self.main else None,
            "owns_gil": any(t.owns_gil for t in self.threads), "error": self.error,
            "threads": [{"thread_id": t.thread_id, "name": t.name, "active": t.active, "owns_gil": t.owns_gil,
                         "classification": t.cls.id if t.cls else None, "top_frame": t.top, "moved": t.moved}
                        for t in self.threads],
        }


@dataclass
class StuckAnalysis:
    processes: list[ProcessView]
    summary: list[str]  # most telling first: what to read under a hung verdict
    stuck: bool  # something is in a stuck place (not only the idle serving loop)
    odd_one_out: dict | None = None
    groups: list[dict] = field(default_factory=list)
    unmoved: list[str] = field(default_factory=list)  # "Worker_TP0 MainThread" ... (with an earlier dump)

    @property
    def headline(self) -> str:
        return self.summary[0] if self.summary else ""

    def to_dict(self) -> dict:
        return {"headline": self.headline, "summary": self.summary, "stuck": self.stuck,
                "odd_one_out": self.odd_one_out, "groups": self.groups, "unmoved": self.unmoved,
                "processes": [p.to_dict() for p in self.processes]}


def short_state(status: str) -> str:
    return STATE_NAMES.get(status, status[:1].upper() if status else "")


def role_of(name: str, cmdline: str, rules: StackRules) -> tuple[str, str, str]:
    """(role, label, rank) from the process title: EngineCore_DP0, Worker_TP1, API server."""
    found = rules.role_of(name, cmdline)
    if found is None:
        return "process", name or "?", name or "?"
    role, match = found
    parts = [f"{key.upper()}{value}" for key, value in match.groupdict().items() if value is not None]
    rank = "_".join(sorted(parts, key=lambda p: ("DP", "PP", "TP").index(p[:2])))
    label = f"{role.name}_{rank}" if rank and role.name != "API server" else role.name
    return role.name, label, rank or label


def _view_thread(thread: ThreadStack, rules: StackRules) -> ThreadView:
    idle = [rules.is_idle_frame(f.name, f.filename) for f in thread.frames]
    kept = [f for f, waiting in zip(thread.frames, idle, strict=True) if not waiting]
    return ThreadView(thread.thread_id, thread.name, thread.active, thread.owns_gil,
                      (kept or thread.frames)[:SHOWN_FRAMES], rules.classify(thread.frames, idle))


def _main_thread(threads: list[ThreadView]) -> ThreadView | None:
    """The main thread says what a process does (EngineCore's busy loop, a worker's model code)."""
    return next((t for t in threads if t.name == "MainThread"), None) or \
        next((t for t in threads if t.owns_gil or t.active), None) or (threads[0] if threads else None)


def view_process(dump: ProcessDump, facts: ProcFacts | None, rules: StackRules) -> ProcessView:
    role, label, rank = role_of(dump.name, dump.cmdline, rules)
    # the state sampled before py-spy attached; else what the dump itself recorded, if anything
    state = short_state(facts.state) if facts and facts.state else str(getattr(dump, "state", "") or "")
    view = ProcessView(dump.pid, role, label, rank, state,
                       facts.cpu_percent if facts else None, dump.error)
    view.compiler = bool(dump.error and not dump.threads and rules.compiler and rules.compiler.search(dump.name))
    if view.compiler:
        view.label, view.rank, view.cmdline = dump.name, dump.name, dump.cmdline
    view.threads = [_view_thread(t, rules) for t in dump.threads]
    view.main = _main_thread(view.threads)
    return view


def _group(views: list[ProcessView]) -> list[list[ProcessView]]:
    groups: dict[tuple, list[ProcessView]] = {}
    for view in views:
        groups.setdefault(view.key(), []).append(view)
    return sorted(groups.values(), key=len)  # the smallest group (the odd one) first


def _names(views: list[ProcessView]) -> str:
    return ", ".join(v.rank for v in views)


def _function(view: ProcessView) -> str:
    return view.main.frames[0].name if view.main and view.main.frames else view.classification


def _group_line(group: list[ProcessView]) -> str:
    return f"{len(group)} workers: {group[0].where()}" if len(group) > 1 else f"{group[0].label}: {group[0].where()}"


def _ranks_lines(workers: list[ProcessView], analysis: StuckAnalysis, since: str, every_rank: bool) -> list[str]:
    """`every_rank`: no rank is left out (stopped): one collective for all is then a communication problem."""
    groups = _group(workers)
    analysis.groups = [{"processes": [v.label for v in g], "classification": g[0].classification,
                        "title": g[0].title, "top_frame": g[0].main.top if g[0].main else None} for g in groups]
    if len(groups) == 1:
        group = groups[0]
        lines = [_group_line(group)]
        if every_rank and len(group) > 1 and group[0].classification == "collective":
            lines.append(f"all ranks wait in the same collective: {COMM_HINT}")
        return lines
    biggest = groups[-1]
    lines = []
    rest = (f"while {_names(biggest)} {'are' if len(biggest) > 1 else 'is'} {biggest[0].title}: "
            f"{_function(biggest[0])}" + (f" since {since}" if since else ""))
    for odd in groups[:-1]:
        who = " and ".join(v.label for v in odd)
        if odd[0].main and not odd[0].stopped and not odd[0].error:
            verb = "is" if len(odd) == 1 else "are"
            lines.append(f"{who} {verb} still in {odd[0].main.path} [{odd[0].title}] {rest}")
        else:
            lines.append(f"{who}: {odd[0].where()} {rest}")
    first = groups[0][0]
    analysis.odd_one_out = {"process": first.label, "pid": first.pid, "classification": first.classification,
                            "function": _function(first), "where": first.where(),
                            "others": [v.label for v in biggest], "others_function": _function(biggest[0]),
                            "others_classification": biggest[0].classification}
    lines.append(_group_line(biggest))
    return lines


def _unmoved(before: list[ProcessDump], after: list[ProcessDump], views: dict[int, ProcessView]) -> list[str]:
    old = {(d.pid, t.thread_id): t.signature() for d in before for t in d.threads}
    same = []
    for dump in after:  # main threads first: they say what a process does
        for thread in sorted(dump.threads, key=lambda t: t.name != "MainThread"):
            moved = old.get((dump.pid, thread.thread_id))
            view = views.get(dump.pid)
            tv = next((t for t in view.threads if t.thread_id == thread.thread_id), None) if view else None
            if moved is None or tv is None:
                continue
            tv.moved = moved != thread.signature()
            if not tv.moved and thread.frames:
                same.append(f"{view.label} {thread.name or thread.thread_id} in {tv.top}")
    return same


def _unmoved_line(analysis: StuckAnalysis) -> list[str]:
    same = analysis.unmoved
    if not same:
        return []
    listed = "; ".join(same[:4]) + (" …" if len(same) > 4 else "")
    if not any(t.moved for v in analysis.processes for t in v.threads):
        return [f"nothing moved since the previous dump ({len(same)} threads): {listed}"]
    return [f"{len(same)} thread(s) did not move since the previous dump: {listed}"]


def analyze(dumps: list[ProcessDump], facts: dict[int, ProcFacts] | None = None,
            previous: list[ProcessDump] | None = None, rules: StackRules | None = None,
            since: str = "") -> StuckAnalysis:
    """`since`: when the tree last made progress (its last output), said with the ranks that wait."""
    rules = rules or load_rules()
    facts = facts or {}
    views = [view_process(d, facts.get(d.pid), rules) for d in dumps]
    analysis = StuckAnalysis(views, [], any(v.stuck for v in views))
    lines: list[str] = []
    for view in views:
        if view.stopped:  # a dump read without pausing still says where it was stopped
            where = f"; it was in {view.main.path}" if view.main and view.main.frames else ""
            lines.append(f"{view.label} (PID {view.pid}) is stopped (state {view.state}): nothing in it runs "
                         f"until SIGCONT{where}")
    workers = [v for v in views if v.role == "Worker"]
    others = [v for v in views if v.role != "Worker" and not v.stopped]
    engines = [v for v in others if v.role == "EngineCore"]
    engines_idle = bool(engines) and all(v.classification == "idle_serving" for v in engines)
    if engines_idle:  # workers waiting for the idle engine's next message (worker_busy_loop) wait normally
        analysis.stuck = any(v.stuck for v in views if v.classification not in ("shm_queue", "rpc_poll"))
    idle = engines_idle and not analysis.stuck
    if idle:
        lines.append(f"not stuck: {', '.join(v.label for v in engines)} idle, waiting for requests "
                     f"({engines[0].main.path if engines[0].main else '?'})")
    if workers:
        running = [w for w in workers if not w.stopped]
        lines.extend(_ranks_lines(running or workers, analysis, since, every_rank=len(running) == len(workers)))
    # the engine and the API server by importance: stuck ones first, then the rest
    for view in sorted(others, key=lambda v: (not v.stuck, v.role != "EngineCore", v.pid)):
        if idle and view.role == "EngineCore":
            continue  # said in the first line
        if view.compiler:
            lines.append(f"{view.label} (PID {view.pid}): {view.title}: {view.cmdline[:120]}")
            continue
        if view.error == "not a Python process" or (view.role == "process" and not view.stuck and not view.error):
            continue  # helpers (a resource tracker) only where they are the problem
        lines.append(f"{view.label} (PID {view.pid}): {view.where()}" + (f" since {since}" if since and view.stuck else ""))
    if not workers and engines and all(v.classification == "collective" for v in engines):
        lines.append(f"a collective that never completes: {COMM_HINT}")
    if previous is not None:
        analysis.unmoved = _unmoved(previous, dumps, {v.pid: v for v in views})
        lines.extend(_unmoved_line(analysis))
    if not views:
        lines.append("no Python process to read")
    elif not lines:  # no vLLM role here: say what each process is in
        lines.extend(f"{v.label} (PID {v.pid}): {v.where()}" for v in views[:6])
    analysis.summary = lines
    return analysis
