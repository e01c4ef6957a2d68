"""Modal screens: help, confirm, a one-line prompt, the debug-variable toggles, pickers, text."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from workbench.core.record.debugvars import DebugVar


def human_key(keys: str) -> str:
    """`slash` → `/`, `ctrl+right_square_bracket` → `ctrl+]`, `up,k` → `↑ k`: keys as printed on them."""
    shown = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        shown.append("+".join([*modifiers, format_key(name)]))
    return " ".join(shown)


class HelpScreen(ModalScreen[None]):
    """Built once per app and kept (installed): opening it is a screen switch, not a rebuild.
    Opaque, so nothing beneath it is composited while it is up."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = "HelpScreen { background: $background; }"
    covers = True  # the app skips drawing the panes beneath it

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__(classes="modal")
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what", no_wrap=True)
        table.add_column("why", style="dim", ratio=1)  # wraps inside its column, never to column 0
        for key, desc, tip in self.rows:
            table.add_row(human_key(key), desc, tip)
        with VerticalScroll(classes="dialog", id="help"):
            yield Static("[b]Keys[/b]  Esc (or ?) closes this · every action is also in the command palette: ctrl+p\n")
            yield Static(table)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__(classes="modal")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Static(f"{escape(self.question)}\n\n[b]y[/b] yes   [b]n[/b] no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog prompt"):
            yield Static(escape(self.title_text))
            yield Input(value=self.value, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.is_current:  # a second Submitted can arrive while the screen is being popped
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DebugVarsScreen(ModalScreen[None]):
    """Enter cycles a variable off → values → off; `+` adds NAME=VALUE. Applies on the next relaunch."""

    BINDINGS = [Binding("escape,t", "dismiss", "Close"), Binding("plus", "add", "Add NAME=VALUE")]

    def __init__(self, known: list[DebugVar], pending: dict[str, str | None]) -> None:
        super().__init__(classes="modal")
        self.known = known
        self.pending = pending  # the app's dict, changed in place

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="debug-vars"):
            yield Static("[b]Debug variables for the next relaunch[/b]  Enter: cycle  +: add  Esc: close")
            yield OptionList(*self._options(), id="debug-options")
            yield Static(id="debug-guard")

    def _names(self) -> list[str]:
        names = [v.name for v in self.known]
        return names + sorted(n for n in self.pending if n not in names)

    def _options(self) -> list[Option]:
        by_name = {v.name: v for v in self.known}
        options = []
        for name in self._names():
            value = self.pending.get(name)
            why = by_name[name].why if name in by_name else "added by you"
            state = f"[b green]{escape(value)}[/]" if value is not None else "[dim]off[/dim]"
            options.append(Option(f"{name:<26} {state}  [dim]{escape(why)}[/dim]", id=name))
        return options

    def _refresh(self, keep: int | None) -> None:
        options = self.query_one("#debug-options", OptionList)
        options.clear_options()
        options.add_options(self._options())
        if keep is not None:
            options.highlighted = keep
        guards = [f"▲ {v.name}: {v.guard}" for v in self.known if v.guard and self.pending.get(v.name) is not None]
        self.query_one("#debug-guard", Static).update(f"[yellow]{escape(chr(10).join(guards))}[/]" if guards else "")

    def on_mount(self) -> None:
        self._refresh(0)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        name = event.option.id or ""
        known = {v.name: v for v in self.known}.get(name)
        current = self.pending.get(name)
        new = known.next_value(current) if known else (None if current is not None else "1")
        if new is None:
            self.pending.pop(name, None)
        else:
            self.pending[name] = new
        self._refresh(event.option_index)

    def action_add(self) -> None:
        def added(text: str | None) -> None:
            if text and "=" in text:
                name, value = text.split("=", 1)
                if name.strip():
                    self.pending[name.strip()] = value.strip()
                    self._refresh(None)
        self.app.push_screen(PromptScreen("NAME=VALUE (applies on the next relaunch)"), added)


class PickScreen(ModalScreen[int | None]):
    """Pick one of several labelled choices (e.g. which process to profile)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[int, str]]) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="pick"):
            yield Static(escape(self.title_text))
            yield OptionList(*[Option(escape(label), id=str(value)) for value, label in self.choices])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """A read-only page of text (a stack dump, a profile's hottest frames)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, markup: str) -> None:
        super().__init__(classes="modal")
        self.markup = markup

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="text-page"):
            yield Static(self.markup)
