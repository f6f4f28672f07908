"""The settings in force, where each came from (file, environment, flag, default), secrets shown
as ******** (Settings.redacted(), the same view as `s3rs config`)."""

from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from s3rs_tui.config import Settings


class ConfigScreen(ModalScreen[None]):
    BINDINGS = [("escape,q,o", "close", "Close")]

    def __init__(self, settings: Settings):
        super().__init__(classes="dialog")
        self.settings = settings

    def compose(self) -> ComposeResult:
        with Vertical(classes="box wide tall"):
            yield Static(f"Config file: {self.settings.config_path or '(none: built-in defaults)'}",
                         classes="title")
            yield DataTable(cursor_type="row", id="settings")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("setting", "value", "source")
        for section, values in self.settings.redacted().items():
            for key, value in values.items():
                source = self.settings.sources.get(f"{section}.{key}", "file")
                table.add_row(f"{section}.{key}", repr(value), source)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
