"""The watermark screen: the current watermark and the backup kept by the last reset; set it
(timestamp and optional id, checked as you type, with MySQL's estimate of the rows after it),
reset it (confirm) or force-reset it (type the table name). Changes go through s3rs_tui.ops, the
same functions as `s3rs watermark`, and are refused while the table is running."""

import asyncio
from collections.abc import Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

from s3rs_tui.jobs import watermark as ops
from s3rs_tui.runtime.config import Settings
from s3rs_tui.runtime.errors import ConfigError, S3rsError
from s3rs_tui.runtime.keys import KeyParts
from s3rs_tui.runtime.parsing import parse_timestamp
from s3rs_tui.tui import panel_rows
from s3rs_tui.tui.logfile import RunLog
from s3rs_tui.tui.screens.confirm import ConfirmModal, if_yes
from s3rs_tui.tui.screens.error import ErrorModal, describe, error_modal
from s3rs_tui.tui.widgets.panel import Panel

ESTIMATE_DELAY = 0.4  # seconds of no typing before MySQL is asked


class WatermarkScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "close", "Close")]

    def __init__(self, settings: Settings, table: str, log: RunLog, table_running: Callable[[], bool]):
        super().__init__()
        self.settings, self.table, self.log_file, self.table_running = settings, table, log, table_running
        self.position: tuple[str, KeyParts | None] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="watermark-screen"):
            yield Static(f"Watermark of {self.table}", classes="title")
            with Horizontal(id="documents"):
                yield Panel("Current", id="current")
                yield Panel("Kept by the last reset", id="backup")
            yield Static("Set: the next sync starts after (timestamp, id); without an id, at the "
                         "timestamp (inclusive).", classes="hint")
            with Horizontal(classes="inputs"):
                yield Input(placeholder="YYYY-MM-DD HH:MM:SS[.ffffff]", id="timestamp")
                yield Input(placeholder="id (optional)", id="key")
            yield Static("", id="check")
            with Horizontal(classes="buttons"):
                yield Button("Set", variant="primary", id="set", disabled=True)
                yield Button("Reset", variant="warning", id="reset")
                yield Button("Force reset", variant="error", id="force")
                yield Button("Close", id="close")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        self.query_one("#timestamp").focus()

    @work(exclusive=True, group="load")
    async def load(self) -> None:
        def read():
            state = ops.TableState(self.settings, self.table)
            return state.watermarks.get(state.name), state.watermarks.latest_backup(state.name)

        current, kept = self.query_one("#current", Panel), self.query_one("#backup", Panel)
        try:
            watermark, backup = await asyncio.to_thread(read)
        except Exception as exc:  # noqa: BLE001 - shown in place; a corrupt watermark can still be replaced
            current.show([("error", describe(exc, self.log_file)[0])])
            kept.show([])
            return
        current.show(panel_rows.document(watermark) if watermark else
                     [("none", "no watermark yet: the next sync starts from the beginning")])
        kept.show([("backup", backup[0]), *panel_rows.document(backup[1])] if backup
                  else [("none", "no reset yet")])

    # -- set: checked as you type ----------------------------------------------------------------

    def on_input_changed(self, _event: Input.Changed) -> None:
        check = self.query_one("#check", Static)
        self.position = None
        text, key_text = self.query_one("#timestamp", Input).value, self.query_one("#key", Input).value
        try:
            if not text.strip():
                raise ValueError("type a timestamp, like 2024-06-01 00:00:00")
            timestamp = parse_timestamp(text)
            key = ops.parse_key(key_text.split(",")) if key_text.strip() else None
        except (ValueError, ConfigError) as exc:
            check.update(str(exc))
            check.set_class(bool(text.strip()), "error")
            self.query_one("#set", Button).disabled = True
            return
        self.position = (timestamp, key)
        check.remove_class("error")
        check.update(f"the next sync would start {ops.describe_start(timestamp, key)}; counting rows...")
        self.query_one("#set", Button).disabled = False
        self.estimate(timestamp, key)

    @work(exclusive=True, group="estimate")
    async def estimate(self, timestamp: str, key: KeyParts | None) -> None:
        await asyncio.sleep(ESTIMATE_DELAY)
        try:
            state = ops.TableState(self.settings, self.table)
            rows = await asyncio.to_thread(ops.rows_after, state, timestamp, key)
            counted = f"~{rows:,} rows lie after it (MySQL's estimate)"
        except S3rsError as exc:
            counted = f"rows after it unknown: {exc}"
        if self.position == (timestamp, key):
            self.query_one("#check", Static).update(
                f"the next sync would start {ops.describe_start(timestamp, key)}: {counted}")

    # -- changes ---------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "close":
            self.dismiss(None)
        elif button == "set":
            self.action_set()
        elif button == "reset":
            self.ask(f"Reset {self.table} so the next sync re-reads the whole table? "
                     "A copy of the old watermark is kept.", "reset", ops.reset)
        elif button == "force":
            self.app.push_screen(
                ConfirmModal(f"Force-reset {self.table}? The old watermark is discarded without a backup. "
                             f"Type the table name to confirm.", yes="Force reset", typed=self.table),
                if_yes(lambda: self.change("force-reset", ops.force_reset)))

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        """Enter in either field: Set, as the button (after its confirmation)."""
        self.action_set()

    def action_set(self) -> None:
        if not self.position:
            self.notify("type a valid timestamp first", severity="warning", timeout=3)
            return
        timestamp, key = self.position
        self.ask(f"Set the watermark of {self.table} so the next sync starts "
                 f"{ops.describe_start(timestamp, key)}?", "set",
                 lambda state: ops.set_position(state, timestamp, key))

    def ask(self, question: str, what: str, change: Callable[[ops.TableState], object]) -> None:
        self.app.push_screen(ConfirmModal(question, yes=what.capitalize()),
                             if_yes(lambda: self.change(what, change)))

    @work(exclusive=True, group="change")
    async def change(self, what: str, change: Callable[[ops.TableState], object]) -> None:
        if self.table_running():
            self.app.push_screen(ErrorModal(
                f"{self.table}: watermark {what} refused", f"{self.table} is running in this dashboard.",
                "Stop the run first (x), then change the watermark.", self.log_file.path))
            return
        try:
            await asyncio.to_thread(lambda: change(ops.TableState(self.settings, self.table)))
        except Exception as exc:  # noqa: BLE001 - every failure ends in the error dialog
            self.app.push_screen(error_modal(f"{self.table}: watermark {what} failed", exc, self.log_file))
            return
        self.log_file.write(f"{self.table}: watermark {what} done")
        self.notify(f"watermark {what} done", title=self.table)
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
