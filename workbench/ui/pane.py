"""One run's pane: header, the pinned root cause, the log, and the side panels a layout names."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.core.engine.run import Run
from workbench.core.knowledge.records import Finding
from workbench.ui.layouts import Layout
from workbench.ui.logview import LogView
from workbench.ui.metrics_panel import MetricsPanel
from workbench.ui.panels import finding_prompt, header_text, phases_text, pinned_text


class FindingsList(OptionList):
    """Findings of the pane's run; Enter jumps the log to one, `a` applies its action."""

    def __init__(self) -> None:
        super().__init__(classes="findings")
        self.findings: list[Finding] = []
        self._shown: tuple | None = None  # nothing drawn yet, not even "no findings"

    def show(self, run: Run | None) -> None:
        findings = run.findings() if run is not None else []
        root = run.root_cause() if run is not None else None
        if root is not None:
            findings = [root, *[f for f in findings if f is not root]]
        key = tuple((f.id, f.first_seq, f.count, f.last_seq) for f in findings) + ((root.id,) if root else ())
        if key == self._shown:
            return
        self._shown = key
        highlighted = self.highlighted
        self.findings = findings
        self.clear_options()
        self.add_options([Option(finding_prompt(f, f is root)) for f in findings] or [Option("[i]no findings[/i]", disabled=True)])
        if highlighted is not None and highlighted < len(findings):
            self.highlighted = highlighted

    def selected(self) -> Finding | None:
        if self.highlighted is None or self.highlighted >= len(self.findings):
            return None
        return self.findings[self.highlighted]


class RunPane(Vertical):
    """Shows one run (any of the session's); which one can change without rebuilding the pane."""

    def __init__(self, index: int, layout: Layout) -> None:
        super().__init__(classes="pane", id=f"pane-{index}")
        self.index = index
        self.layout_spec = layout
        self.run_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-header", id=f"header-{self.index}")
        yield Static(classes="pinned", id=f"pinned-{self.index}")
        panels = self.layout_spec.panels
        if self.layout_spec.arrangement == "grid":
            with Grid(classes="cells"):
                yield LogView(id=f"log-{self.index}")
                for panel in panels[:3]:
                    yield from self._panel(panel)
        else:
            with Horizontal(classes="body"):
                yield LogView(id=f"log-{self.index}")
                if panels:
                    with VerticalScroll(classes="side"):
                        for panel in panels:
                            yield from self._panel(panel)

    def _panel(self, name: str) -> ComposeResult:
        if name == "findings":
            yield FindingsList()
        elif name == "metrics":
            yield MetricsPanel()
        elif name == "stacks":
            with VerticalScroll(classes="stacks-box"):
                yield Static(classes="stacks")
        else:
            yield Static(classes=name)

    @property
    def log(self) -> LogView:
        return self.query_one(LogView)

    def show(self, run: Run | None) -> None:
        self.run_id = run.id if run is not None else None
        self.log.show(run)
        self.refresh_header(run)

    def refresh_header(self, run: Run | None, tick: int = 0, metrics: str = "") -> None:
        if run is None:
            self.query_one(".pane-header", Static).update("[i]no run in this pane yet[/i]")
            self.query_one(".pinned", Static).update("")
            return
        summary = f"\n[b]serving[/b] {escape(metrics)}" if metrics and run.alive and run.ready_url else ""
        header = self.query_one(".pane-header", Static)
        header.update(header_text(run, tick) + summary)
        header.set_class(bool(summary), "serving")  # a third line for the metrics summary
        pinned = pinned_text(run)
        widget = self.query_one(".pinned", Static)
        widget.update(pinned)
        widget.display = bool(pinned)

    def set_panel(self, name: str, markup: str) -> None:
        for widget in self.query(f"Static.{name}"):
            widget.update(markup)

    def refresh_side(self, run: Run | None, tick: int = 0) -> None:
        if run is None:
            return
        self.set_panel("phases", phases_text(run, tick))
        for findings in self.query(FindingsList):
            findings.show(run)

    def has_panel(self, name: str) -> bool:
        return name in self.layout_spec.panels
