"""One run's pane: header, the pinned root cause, the log, and the side panels a layout names."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
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
from workbench.ui.stuckview import stuck_banner_text


class FindingsList(OptionList):
    """Findings of the pane's run; Enter jumps the log to one, `a` applies its action."""

    def __init__(self) -> None:
        super().__init__(classes="findings")
        self.findings: list[Finding] = []
        self._shown: tuple | None = None  # nothing drawn yet, not even "no findings"

    def show(self, run: Run | None, stuck: str = "") -> None:
        findings = run.findings() if run is not None else []
        root = run.root_cause() if run is not None else None
        if root is not None:
            findings = [root, *[f for f in findings if f is not root]]
        key = (run.id if run else None, stuck, *((f.id, f.first_seq, f.count, f.last_seq) for f in findings),
               root.id if root else None)
        if key == self._shown:
            return
        self._shown = key
        highlighted = self.highlighted
        self.findings = findings
        self.clear_options()
        options = [Option(finding_prompt(f, f is root, run.spec.argv if run else None)) for f in findings]
        if stuck:  # a hung run has no error line to show: where it sits and what to press instead
            options.insert(0, Option(stuck))
        self.add_options(options or [Option("[i]no findings[/i]", disabled=True)])
        if highlighted is not None and highlighted < len(findings):
            self.highlighted = highlighted

    def selected(self) -> Finding | None:
        index = (self.highlighted or 0) - (1 if self._shown and self._shown[1] else 0)
        if self.highlighted is None or not 0 <= index < len(self.findings):
            return None
        return self.findings[index]


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
        yield Static(classes="stuck-banner", id=f"stuck-{self.index}")
        panels = self.layout_spec.panels
        if self.layout_spec.arrangement == "grid":
            with Grid(classes="cells"):
                yield LogView(id=f"log-{self.index}")
                for panel in panels[:3]:
                    yield from self._panel(panel)
        elif self.layout_spec.arrangement == "stacked":  # side by side panes: the log gets the width
            yield LogView(id=f"log-{self.index}")
            if panels:
                with Horizontal(classes="strip"):
                    for panel in panels:  # the findings list scrolls itself: one scrollbar, not two
                        with Vertical(classes="strip-cell"):
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
            self.query_one(".stuck-banner", Static).display = False
            return
        # cropped, never wrapped: a long command must not push the status row out of the header
        markup = header_text(run, tick)
        if not self.log.follow:  # on the command row: the status row stays whole
            status, _, command = markup.partition("\n")
            markup = f"{status}\n[b reverse] following paused: f or G resumes [/] {command}"
        summary = f"\n[b]serving[/b] {escape(metrics)}" if metrics and run.alive and run.ready_url else ""
        header = Text.from_markup(markup + summary, overflow="ellipsis")
        header.no_wrap = True
        widget_header = self.query_one(".pane-header", Static)
        widget_header.update(header)
        widget_header.set_class(bool(summary), "serving")  # a third line for the metrics summary
        pinned = pinned_text(run)
        widget = self.query_one(".pinned", Static)
        widget.update(pinned)
        widget.display = bool(pinned)
        banner = stuck_banner_text(run.verdict, run.stuck)
        stuck = self.query_one(".stuck-banner", Static)
        stuck.update(banner)
        stuck.display = bool(banner)

    def set_panel(self, name: str, markup: str) -> None:
        for widget in self.query(f"Static.{name}"):
            widget.update(markup)

    def refresh_side(self, run: Run | None, tick: int = 0, stuck: str = "") -> None:
        if run is None:
            return
        self.set_panel("phases", phases_text(run, tick))
        for findings in self.query(FindingsList):
            findings.show(run, stuck)

    def has_panel(self, name: str) -> bool:
        return name in self.layout_spec.panels
