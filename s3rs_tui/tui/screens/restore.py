"""The restore dialog (`b`): where to restore the selected table and as of when, checked as typed
(the same parsing as `s3rs restore`); the app then asks for confirmation and runs the restore."""

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Static

from s3rs_tui.runtime.parsing import parse_timestamp, split_table_name


@dataclass(frozen=True)
class RestoreRequest:
    target: str            # db.table in MySQL
    as_of: str | None      # None: everything stored
    replace: bool = False  # drop a target that holds rows (s3rs restore --replace)


class RestoreModal(ModalScreen[RestoreRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, table: str):
        super().__init__(classes="dialog")
        self.table = table

    def compose(self) -> ComposeResult:
        with Vertical(classes="box"):
            yield Static(f"Restore {self.table} into MySQL", classes="title")
            yield Static("A new table, created with the source's definition (an existing one that "
                         "holds rows is refused unless Replace is ticked). As of: a cursor time, empty for "
                         "the last backup.", classes="hint")
            yield Input(value=f"{self.table}_restored", placeholder="db.table", id="target")
            yield Input(placeholder="as of YYYY-MM-DD HH:MM:SS[.ffffff] (empty: the last backup)", id="as-of")
            yield Checkbox("Replace: drop the target first if it holds rows", id="replace")
            yield Static("", id="check")
            with Horizontal(classes="buttons"):
                yield Button("Restore", variant="primary", id="restore")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#target").focus()

    def request(self) -> RestoreRequest | str:
        """What is asked, or why it cannot be."""
        target, as_of = self.query_one("#target", Input).value.strip(), self.query_one("#as-of", Input).value
        try:
            database, table = split_table_name(target, self.table.split(".")[0])
        except ValueError as exc:
            return f"target: {exc}"
        if f"{database}.{table}".lower() == self.table.lower():
            return "target: the source table itself (only s3rs restore --replace writes into it)"
        try:
            return RestoreRequest(f"{database}.{table}", parse_timestamp(as_of) if as_of.strip() else None,
                                  self.query_one("#replace", Checkbox).value)
        except ValueError as exc:
            return f"as of: {exc}"

    def on_input_changed(self) -> None:
        request = self.request()
        self.query_one("#check", Static).update(request if isinstance(request, str) else "")
        self.query_one("#restore", Button).disabled = isinstance(request, str)

    def on_input_submitted(self) -> None:
        self.answer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "restore":
            self.answer()
        else:
            self.dismiss(None)

    def answer(self) -> None:
        request = self.request()
        if not isinstance(request, str):
            self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
