"""A confirmation dialog: yes or no; for the dangerous ones the operator must type a word (the
table name) before "yes" is enabled. Focus starts on the safe choice; y answers yes (once the
word is typed), n and Escape answer no."""

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


def if_yes(action: Callable[[], object]) -> Callable[[bool | None], None]:
    """The dismiss callback for push_screen: run `action` when the answer is yes."""
    def answered(yes: bool | None) -> None:
        if yes:
            action()
    return answered


class ConfirmModal(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [("y", "yes", "Yes"), ("n,escape", "cancel", "No")]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "Cancel", typed: str | None = None):
        super().__init__(classes="dialog")
        self.question, self.yes, self.no, self.typed = question, yes, no, typed

    def compose(self) -> ComposeResult:
        with Vertical(classes="box"):
            yield Static(self.question, classes="question")
            if self.typed:
                yield Input(placeholder=f"type {self.typed} to confirm", id="typed")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes", disabled=bool(self.typed))
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#typed" if self.typed else "#no").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = event.value.strip() != self.typed

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.typed:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        if not self.query_one("#yes", Button).disabled:
            self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
