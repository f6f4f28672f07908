"""The dashboard's own screen. Its keys live here, not on the app, so they fire only while it is
on top: the watermark and cleanup screens and the dialogs own their keys. A key the app refuses
(DashboardApp.refusal) leaves the footer, which keeps to what can be done (all keys fit in 80
columns that way), and pressing it says why instead of doing nothing."""

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual.binding import Binding, BindingType
from textual.screen import Screen

if TYPE_CHECKING:
    from s3rs_tui.tui.app import DashboardApp

BINDINGS = [
    Binding("s", "app.start_sync", "Sync"),
    Binding("g", "app.start_progressive", "Chunks", tooltip="a progressive run: in chunks, until caught up"),
    Binding("v", "app.verify", "Verify"),
    # not in the footer: with a warehouse's `v` it would push Help and Quit past 80 columns
    Binding("r", "app.reconcile", "Reconcile", show=False,
            tooltip="store deletes and changes the cursor missed"),
    # not in the footer either (80 columns): in the help and the command palette
    Binding("b", "app.restore", "Restore", show=False, tooltip="restore the table into MySQL as of a moment"),
    Binding("p", "app.pause_resume", "Pause"),
    Binding("x", "app.stop_run", "Stop"),
    Binding("w", "app.watermark", "Watermark"),
    Binding("c", "app.cleanup", "Cleanup"),
    Binding("o", "app.config", "Config"),
    Binding("m", "app.maximize_log", "Log", tooltip="maximise the log pane, or put it back"),
    Binding("f", "app.filter_log", "Filter", show=False, tooltip="log: all lines, problems, this table"),
    Binding("question_mark,f1", "app.help", "Help", key_display="?"),
]

WIDE_COLUMNS = 110
TALL_ROWS = 30
KEYS = {key: binding.action.removeprefix("app.") for binding in BINDINGS for key in binding.key.split(",")}


class MainScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = list(BINDINGS)
    # In dashboard.tcss: the Runs panel; the header. (No ClassVar: Textual's own `ClassVar[...] | None`
    # declaration reads as an instance attribute to mypy, which refuses a ClassVar over it.)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]  # noqa: RUF012
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL_ROWS, "-tall")]  # noqa: RUF012

    def on_key(self, event: events.Key) -> None:
        """A refused key is answered here, before the bindings (which would skip it silently).
        check_action decides (an app may allow more than refusal says); refusal says why."""
        action = KEYS.get(event.key)
        app = cast("DashboardApp", self.app)
        if action and not app.check_action(action, ()):
            reason = app.refusal(action) or "not possible now"
            event.stop()
            event.prevent_default()
            key = event.character or event.key
            self.notify(reason, title=f"{key}: refused", severity="warning", timeout=4)
