"""The dashboard's own screen. Its keys live here, not on the app, so they fire only while it is
on top: the watermark and cleanup screens and the dialogs own their keys. A key the app refuses
(DashboardApp.refusal) leaves the footer, which keeps to what can be done (all keys fit in 80
columns that way), and pressing it says why instead of doing nothing."""

from textual import events
from textual.binding import Binding
from textual.screen import Screen

BINDINGS = [
    Binding("s", "app.start_sync", "Sync"),
    Binding("g", "app.start_progressive", "Chunks", tooltip="a progressive run: in chunks, until caught up"),
    Binding("v", "app.verify", "Verify"),
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
    BINDINGS = BINDINGS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]  # dashboard.tcss: the Runs panel
    VERTICAL_BREAKPOINTS = [(0, "-short"), (TALL_ROWS, "-tall")]  # dashboard.tcss: the header

    def on_key(self, event: events.Key) -> None:
        """A refused key is answered here, before the bindings (which would skip it silently).
        check_action decides (an app may allow more than refusal says); refusal says why."""
        action = KEYS.get(event.key)
        if action and not self.app.check_action(action, ()):
            reason = self.app.refusal(action) or "not possible now"
            event.stop()
            event.prevent_default()
            key = event.character or event.key
            self.notify(reason, title=f"{key}: refused", severity="warning", timeout=4)
