"""A bordered dashboard panel: aligned label/value rows, and below them an optional live widget
(a sparkline, a progress bar). Every panel of the dashboard is one of these."""

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static


class Panel(Vertical):
    def __init__(self, title: str, *, id: str, extra: Widget | None = None):
        super().__init__(id=id, classes="panel")
        self.border_title = title
        self.extra = extra
        self.shown: list[tuple[str, str]] | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="rows")
        if self.extra is not None:
            yield self.extra

    def show(self, rows: list[tuple[str, str]]) -> None:
        """Show these rows; nothing is redrawn when they did not change (cheap for the engine)."""
        if rows == self.shown:
            return
        self.shown = rows
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="italic", no_wrap=True)
        grid.add_column(style="bold", overflow="fold")
        for label, value in rows:
            grid.add_row(label, value)
        self.query_one(".rows", Static).update(grid)
