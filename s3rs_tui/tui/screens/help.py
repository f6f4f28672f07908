"""The keys, where the log file is, and tips for tmux and SSH."""

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = """\
s       start a sync of the selected table
g       start a progressive run (in chunks, until caught up)
v       verify: compare MySQL and the warehouse
r       reconcile: store deletes and changes the cursor missed (no footer key)
b       restore the table into MySQL as of a moment (no footer key)
p       pause / resume (between files; a restore between batches)
x       stop gracefully: finish the file in flight, save the watermark
w       watermark screen: set, reset, force-reset (Enter sets)
c       S3 cleanup screen
o       the settings in force (secrets hidden)
m       maximise the log pane, or put it back
f       filter the log: all lines, problems only, this table only
?       this help            ctrl+p  command palette
q       quit (asks first while a run is going)
up/down select a table; tab moves between fields; escape closes a screen
y / n   answer a dialog (Escape: no)
The footer shows the keys that can be used now; another says why it cannot."""

TIPS = """\
In tmux: set -g escape-time 10 (Escape reacts at once);
truecolor: set -ga terminal-overrides ",*256col*:Tc".
Over slow SSH: TEXTUAL_FPS=10. Colours: TEXTUAL_COLOR_SYSTEM=standard|256|truecolor.
If the terminal goes away (SSH drops, no tmux), the run stops
gracefully with the watermark saved, and the log file says so.
A headless run (--no-ui, cron, nohup) can be followed with `s3rs watch`."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [("escape,q,question_mark", "close", "Close")]

    def __init__(self, log_path: Path):
        super().__init__(classes="dialog")
        self.log_path = log_path

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="box wide"):
            yield Static("Keys", classes="title")
            yield Static(KEYS)
            yield Static(f"\nLog file: {self.log_path}", classes="hint")
            yield Static(f"\n{TIPS}")

    def action_close(self) -> None:
        self.dismiss(None)
