"""The settings in force, where each came from (file, environment, flag, default), secrets shown
as ******** (Settings.redacted(), the same view as `s3rs config`). Values read as an operator
writes them in the TOML file: 127.0.0.1, false, ["a", "b"], not Python's '127.0.0.1', False."""

import json
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from s3rs_tui.runtime.config import Settings


def as_toml(value: Any) -> str:
    """A setting as written in s3rs.toml; a bare string stays bare (it is alone in its cell)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(not set)"
    if value == "":
        return '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str) else as_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v) if isinstance(v, str) else as_toml(v)}"
                                for k, v in value.items()) + " }"
    return str(value)


class ConfigScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape,q,o", "close", "Close")]

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
                table.add_row(f"{section}.{key}", as_toml(value), source)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
